"""The outbound app's hand-written SQL: every statement that bypasses the ORM, in one place.

Each function builds its statement from the models' `_meta` (tables and columns quoted by the
connection), passes values as parameters, runs unchanged on PostgreSQL and SQLite, and says in
one line the measured reason it is not the ORM.
"""

from collections.abc import Sequence
from typing import Any

from django.db import connection

from emailsystem.core.plain_sql import MAX_PARAMETERS, field_column
from emailsystem.outbound.models import WebhookMessage


def messages_read(*, ids: Sequence[int], fields: Sequence[str]) -> list[tuple[Any, ...]]:
    """`fields` (model field names) of the messages among `ids`, in no order.

    Plain SQL: the ORM's `pk__in` lookup, preparing each of a batch's 200 ids and compiling the
    query, made loading batches cost four times as much CPU in the webhooks process (py-spy).
    """
    meta = WebhookMessage._meta
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field_column(meta.get_field(name))) for name in fields)
    table, key = quote(meta.db_table), quote(field_column(meta.pk))
    rows: list[tuple[Any, ...]] = []
    with connection.cursor() as cursor:
        for start in range(0, len(ids), MAX_PARAMETERS):
            chunk = list(ids[start : start + MAX_PARAMETERS])
            placeholders = ", ".join(["%s"] * len(chunk))
            statement = f"SELECT {columns} FROM {table} WHERE {key} IN ({placeholders})"  # noqa: S608 -- names from _meta
            cursor.execute(statement, chunk)
            rows += cursor.fetchall()
    return rows
