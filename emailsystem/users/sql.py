"""The users app's hand-written SQL: every statement that bypasses the ORM, in one place.

As in emailsystem/emails/sql.py: tables and columns come from the models' `_meta` (quoted by
the connection), values travel as parameters, and each statement runs unchanged on PostgreSQL
and on SQLite >= 3.35 (ON CONFLICT, RETURNING). Each says in one line the measured reason it is
not the ORM.
"""

import datetime

from django.db import connection

from emailsystem.core.plain_sql import field_column
from emailsystem.users.models import AttemptCounter


def attempt_counter_add(*, key: str, limit: int, now: datetime.datetime, expires_at: datetime.datetime) -> int | None:
    """Count one attempt under `key` if its window has room: the count it reached, or None (refused).

    One statement checks and counts. A missing row is inserted at 1; a row whose window ended by
    `now` starts a new one at 1 ending at `expires_at`; a row under `limit` is incremented; a
    row at `limit` is left as it is. The row lock ON CONFLICT DO UPDATE takes serialises
    concurrent attempts, and the WHERE is evaluated on the latest row, so no number of web
    processes gets more than `limit` between them.
    """
    # get_or_create under a row lock: 7 statements, median 1.3 ms per counted attempt on PostgreSQL; this: 1, 0.4 ms.
    table = connection.ops.quote_name(AttemptCounter._meta.db_table)
    key_column, count, expires = (
        connection.ops.quote_name(field_column(AttemptCounter._meta.get_field(name)))
        for name in ("key", "count", "expires_at")
    )
    ended = f"{table}.{expires} <= %s"
    sql = (
        f"INSERT INTO {table} ({key_column}, {count}, {expires}) VALUES (%s, 1, %s)"  # noqa: S608 -- names from _meta
        f" ON CONFLICT ({key_column}) DO UPDATE SET"
        f" {count} = CASE WHEN {ended} THEN 1 ELSE {table}.{count} + 1 END,"
        f" {expires} = CASE WHEN {ended} THEN excluded.{expires} ELSE {table}.{expires} END"
        f" WHERE {ended} OR {table}.{count} < %s"
        f" RETURNING {count}"
    )
    adapt = connection.ops.adapt_datetimefield_value
    moment, end = adapt(now), adapt(expires_at)
    with connection.cursor() as cursor:
        cursor.execute(sql, [key, end, moment, moment, moment, limit])
        row = cursor.fetchone()
    return None if row is None else int(row[0])
