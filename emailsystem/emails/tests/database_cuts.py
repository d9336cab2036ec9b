"""A real database failure at a chosen statement: the server ends the session, as a primary's death ends it."""

from collections.abc import Callable
from typing import Any

import psycopg2
from django.db import connection


class EndSessionAt:
    """A Django execute wrapper (`connection.execute_wrapper`): before the first statement that
    `when(sql, seen)` picks (`seen`: the statements run so far), the server ends this session,
    asked from another connection with pg_terminate_backend. Once only."""

    def __init__(self, when: Callable[[str, list[str]], bool]) -> None:
        self.when = when
        self.seen: list[str] = []
        self.ended = False

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
        if not self.ended and self.when(sql, self.seen):
            self.ended = True
            db = connection.settings_dict
            killer = psycopg2.connect(dbname=db["NAME"], user=db["USER"], host=db["HOST"], port=db["PORT"])
            killer.autocommit = True
            with killer.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(%s)", [connection.connection.info.backend_pid])
            killer.close()
        self.seen.append(sql)
        return execute(sql, params, many, context)
