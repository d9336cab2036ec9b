"""Plain SQL for the send path's hottest statements, built from the models' own fields.

In Python, `Model.objects.create()` costs several times the insert itself (signals, the SQL
compiler, a model instance per row) and `.get()` 0.37-0.42 ms against 0.11-0.12 ms for a plain
SELECT: with these helpers a send costs 4.7 ms of CPU in-process, 6.0-7.2 ms without. They take
the table, columns, defaults and value conversions from the model, so a field added later needs
no change here. PostgreSQL and SQLite >= 3.35 both return a multi-row VALUES insert's rows in
order. They send no signals; use them only for models nothing listens to.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Field, Model
from django.utils import timezone

_M = TypeVar("_M", bound=Model)

# SQLite refuses a statement with more than 32,766 parameters; larger inserts go in chunks.
MAX_PARAMETERS = 30_000


def rows_insert(model: type[Model], rows: list[dict[str, Any]], *, skip_conflicts: bool = False) -> list[int]:
    """Insert `rows` (field attnames to values); their primary keys, in order.

    A field a row leaves out takes its default; `auto_now`/`auto_now_add` fields take now.
    One statement unless the rows carry more than MAX_PARAMETERS values. `skip_conflicts`:
    rows that would break a unique constraint are left out (ON CONFLICT DO NOTHING), and
    only the inserted rows' keys are returned.
    """
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    chunk = max(1, MAX_PARAMETERS // len(fields))
    ids: list[int] = []
    for start in range(0, len(rows), chunk):
        ids += _insert_chunk(model, fields, rows[start : start + chunk], skip_conflicts=skip_conflicts)
    return ids


def _insert_chunk(
    model: type[Model], fields: list[Field], rows: list[dict[str, Any]], *, skip_conflicts: bool = False
) -> list[int]:
    now = timezone.now()
    # Rows of one insert mostly share values (a send's deliveries differ only by recipient):
    # convert each distinct value once.
    converted: dict[tuple[str, Any], Any] = {}
    params: list[Any] = []
    for row in rows:
        for field in fields:
            if field.attname in row:
                value = row[field.attname]
            elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
                value = now
            else:
                value = field.get_default()
            key = (field.attname, value)
            try:
                if key not in converted:
                    converted[key] = field.get_db_prep_save(value, connection)
                params.append(converted[key])
            except TypeError:  # unhashable (a JSON value): convert it every time
                params.append(field.get_db_prep_save(value, connection))
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field_column(field)) for field in fields)
    row_placeholders = "(" + ", ".join(["%s"] * len(fields)) + ")"
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} ({columns})"  # noqa: S608 -- names from the model, values as parameters
        f" VALUES {', '.join([row_placeholders] * len(rows))}"
        f"{' ON CONFLICT DO NOTHING' if skip_conflicts else ''}"
        f" RETURNING {quote(field_column(model._meta.pk))}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [pk for (pk,) in cursor.fetchall()]


def field_column(field: object) -> str:
    """The column of a concrete field from `_meta`; TypeError for a relation or other field without one."""
    if not isinstance(field, Field) or field.column is None:
        raise TypeError(f"{field!r} has no column of its own")
    return field.column


def instance_insert(instance: _M) -> _M:
    """Insert one new, unsaved instance with `rows_insert` and set its primary key."""
    fields = [field for field in instance._meta.concrete_fields if not field.primary_key]
    row = {field.attname: field.pre_save(instance, add=True) for field in fields}
    (instance.pk,) = rows_insert(type(instance), [row])
    instance._state.adding = False
    instance._state.db = connection.alias
    return instance


def instance_get(model: type[_M], pk: Any) -> _M | None:
    """The row with this primary key as a model instance, or None.

    Raises TypeError or ValueError when `pk` is not a valid key (as `.get(pk=...)` would).
    """
    pk_field = model._meta.pk
    value = pk_field.get_prep_value(pk)
    if pk_field.get_internal_type() in connection.ops.integer_field_ranges:
        low, high = connection.ops.integer_field_range(pk_field.get_internal_type())
        if not low <= value <= high:
            return None  # no such row can exist (and PostgreSQL would refuse the comparison)
    return _fetch(model, pk_field.name, value)


def instance_get_by(model: type[_M], *, field: str, value: str) -> _M | None:
    """The row whose unique text `field` equals `value` as a model instance, or None.

    ValueError for a field without a unique constraint of its own: more than one row could match.
    """
    model_field = model._meta.get_field(field)
    if not isinstance(model_field, Field) or not model_field.unique:
        raise ValueError(f"{model.__name__}.{field} is not unique")
    return _fetch(model, field, value)


def _fetch(model: type[_M], field: str, value: Any) -> _M | None:
    reader = _reader(model, connection.ops, field)
    with connection.cursor() as cursor:
        cursor.execute(reader.sql, [value])
        row = cursor.fetchone()
    if row is None:
        return None
    return model.from_db(connection.alias, reader.attnames, reader.convert(row))


@dataclass(frozen=True)
class _Reader:
    """How to read one model's row by one unique column: built once per model, column and backend,
    since the statement and the ORM's value converters never change (the authentication classes
    run instance_get and instance_get_by on every request)."""

    sql: str
    attnames: list[str]
    columns: list[tuple[Any, list[Callable[..., Any]]]]  # (column expression, its converters)

    def convert(self, row: tuple[Any, ...]) -> list[Any]:
        """Apply the converters the ORM would (SQLite's datetimes, JSON fields, ...) to a raw row."""
        values = []
        for (column, converters), value in zip(self.columns, row, strict=True):
            for converter in converters:
                value = converter(value, column, connection)
            values.append(value)
        return values


@lru_cache(maxsize=64)
def _reader(model: type[Model], ops: Any, key: str) -> _Reader:
    fields = model._meta.concrete_fields
    quote = ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    table, key_column = quote(model._meta.db_table), quote(field_column(model._meta.get_field(key)))
    converted = []
    for field in fields:
        column = field.get_col(model._meta.db_table)
        converted.append((column, ops.get_db_converters(column) + column.get_db_converters(ops.connection)))
    return _Reader(
        sql=f"SELECT {columns} FROM {table} WHERE {key_column} = %s",  # noqa: S608 -- names from the model
        attnames=[field.attname for field in fields],
        columns=converted,
    )
