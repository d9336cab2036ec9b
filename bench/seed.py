"""Bulk data for the benchmarks, inserted with SQL: the million-email log (kept between runs) and the
old log the `prune` scenario deletes."""

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
        # Statistics on the rows just inserted (ANALYZE samples this transaction's own): without them
        # the planner expected one email and five recipients and nest-looped 10^10 pairs (over 15
        # minutes without finishing, on a database whose tables were first analyzed before seeding).
        cursor.execute("ANALYZE emails_recipient, emails_sentemail")
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


# The `prune` scenario's old log: emails accepted in 2000, long before anything else in the bench
# database, so that a retention ending on PRUNE_CUTOFF deletes them and nothing else.
PRUNE_ACCEPTED = "2000-01-01"
PRUNE_CUTOFF = "2001-01-01"
PRUNE_RECIPIENTS = 10_000


def seed_prunable(*, user_id: int, emails: int) -> int:
    """Give `user_id` `emails` emails accepted in 2000, each with two delivered recipients and an
    event for one of them: 4 rows per email. Returns the rows inserted."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO emails_recipient (email, created) "
            "SELECT 'prune' || g || '@example.com', now() FROM generate_series(0, %s) g ON CONFLICT DO NOTHING",
            [PRUNE_RECIPIENTS - 1],
        )
        cursor.execute(
            "INSERT INTO emails_sentemail (sender_id, template_name, context, subject, body, html_body, from_email,"
            " reply_to, status, recipient_count, created, updated)"
            " SELECT %s, '', '{}', 'Old ' || g, 'body', '', 'seed@example.com', '', 'delivered', 2,"
            "  %s::timestamptz + g * interval '1 second', now()"
            " FROM generate_series(1, %s) g",
            [user_id, PRUNE_ACCEPTED, emails],
        )
        inserted = cursor.rowcount
        # As seed_log: two equality joins, recipients id % N and (7 id + 1) % N, which always differ.
        # The first recipient's delivery also gets an event, in the same statement.
        deliveries = (
            "WITH numbered AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM emails_recipient"
            "   WHERE email LIKE 'prune%%@example.com'),"
            " old AS (SELECT id, created FROM emails_sentemail WHERE sender_id = %s AND created < %s),"
            " inserted AS (INSERT INTO emails_delivery (sent_email_id, recipient_id, status, attempts, reason,"
            "  created, updated, sent_at, delivered_at)"
            "  SELECT o.id, r.id, 'delivered', 1, '', o.created, o.created, o.created, o.created"
            "  FROM old o JOIN numbered r ON r.n = (o.id * %s + %s) %% %s"
            "  ON CONFLICT DO NOTHING RETURNING id, created)"
        )
        events = (
            " INSERT INTO emails_deliveryevent (sg_event_id, delivery_id, event, occurred_at, received_at, detail)"
            " SELECT 'prune-' || id, id, 'delivered', created, created, '' FROM inserted"
        )
        for multiplier, offset, then in ((1, 0, events), (7, 1, " SELECT count(*) FROM inserted")):
            cursor.execute(deliveries + then, [user_id, PRUNE_CUTOFF, multiplier, offset, PRUNE_RECIPIENTS])
            # The first pass's count is its events, one per delivery; the second's is its deliveries.
            inserted += 2 * cursor.rowcount if then is events else cursor.fetchone()[0]
    # Now rather than by autovacuum while the scenario measures; the checkpoint writes the seed's
    # pages now, rather than in the send windows measured before and during prune.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) emails_sentemail, emails_delivery, emails_deliveryevent")
        cursor.execute("CHECKPOINT")
    return inserted
