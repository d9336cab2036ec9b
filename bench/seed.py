"""One million sent emails for the log benchmark, inserted in bulk with SQL and kept between runs."""

from django.db import connection, transaction

SEED_EMAILS = 1_000_000
SEED_RECIPIENTS = 10_000


def seed_log(*, user_id: int) -> bool:
    """Give `user_id` SEED_EMAILS emails over the past year, two recipients each. False if already there.

    One transaction: an interrupted seeding leaves nothing behind, so the next run starts over.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM emails_sentemail WHERE sender_id = %s", [user_id])
        if cursor.fetchone()[0] >= SEED_EMAILS:
            return False
        cursor.execute(
            "INSERT INTO emails_recipient (email, created) "
            "SELECT 'seed' || g || '@example.com', now() FROM generate_series(0, %s) g ON CONFLICT DO NOTHING",
            [SEED_RECIPIENTS - 1],
        )
        cursor.execute(
            "INSERT INTO emails_sentemail (sender_id, template_name, context, subject, body, html_body, from_email,"
            " reply_to, status, recipient_count, created, updated)"
            " SELECT %s, '', '{}', 'Seeded ' || g, 'body', '', 'seed@example.com', '', 'sent', 2,"
            "  now() - (g %% 525600) * interval '1 minute', now()"
            " FROM generate_series(1, %s) g",
            [user_id, SEED_EMAILS],
        )
        # Two equality joins (hash joins), not one join on "n IN (a, b)", which PostgreSQL can only
        # nest-loop. id % 10000 and (7 id + 1) % 10000 differ for every id (6 id + 1 is odd).
        for multiplier, offset in ((1, 0), (7, 1)):
            cursor.execute(
                "WITH numbered AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM emails_recipient"
                "   WHERE email LIKE 'seed%%@example.com'),"
                " seeded AS (SELECT id, created FROM emails_sentemail WHERE sender_id = %s)"
                " INSERT INTO emails_delivery (sent_email_id, recipient_id, status, attempts, reason, created,"
                "  updated, sent_at)"
                " SELECT s.id, r.id, 'sent', 1, '', s.created, s.created, s.created"
                " FROM seeded s JOIN numbered r ON r.n = (s.id * %s + %s) %% %s",
                [user_id, multiplier, offset, SEED_RECIPIENTS],
            )
        cursor.execute("ANALYZE")
    return True
