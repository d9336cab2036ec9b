"""Plain multi-row inserts for the send path's hottest writes.

`Model.objects.create()` costs several times the insert itself in Python: signals, the SQL
compiler, and a model instance per row (bench/profiles/README.md). These helpers build one
`INSERT ... RETURNING` from the model's own fields, so the columns, defaults and value
conversions still come from the model: a field added later needs no change here.
PostgreSQL and SQLite >= 3.35 both return a multi-row VALUES insert's rows in order.
They send no signals; use them only for models nothing listens to.
"""

from typing import Any

from django.db import connection
from django.db.models import Field, Model
from django.utils import timezone

# SQLite refuses a statement with more than 32,766 parameters; larger inserts go in chunks.
MAX_PARAMETERS = 30_000


def rows_insert(model: type[Model], rows: list[dict[str, Any]]) -> list[int]:
    """Insert `rows` (field attnames to values); their primary keys, in order.

    A field a row leaves out takes its default; `auto_now`/`auto_now_add` fields take now.
    One statement unless the rows carry more than MAX_PARAMETERS values.
    """
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    chunk = max(1, MAX_PARAMETERS // len(fields))
    ids: list[int] = []
    for start in range(0, len(rows), chunk):
        ids += _insert_chunk(model, fields, rows[start : start + chunk])
    return ids


def _insert_chunk(model: type[Model], fields: list[Field], rows: list[dict[str, Any]]) -> list[int]:
    now = timezone.now()
    params: list[Any] = []
    for row in rows:
        for field in fields:
            if field.attname in row:
                value = row[field.attname]
            elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
                value = now
            else:
                value = field.get_default()
            params.append(field.get_db_prep_save(value, connection))
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    row_placeholders = "(" + ", ".join(["%s"] * len(fields)) + ")"
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} ({columns})"  # noqa: S608 -- names from the model, values as parameters
        f" VALUES {', '.join([row_placeholders] * len(rows))}"
        f" RETURNING {quote(model._meta.pk.column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [pk for (pk,) in cursor.fetchall()]


def instance_insert(instance: Model) -> Model:
    """Insert one new, unsaved instance with `rows_insert` and set its primary key."""
    fields = [field for field in instance._meta.concrete_fields if not field.primary_key]
    row = {field.attname: field.pre_save(instance, add=True) for field in fields}
    (instance.pk,) = rows_insert(type(instance), [row])
    instance._state.adding = False
    instance._state.db = connection.alias
    return instance
