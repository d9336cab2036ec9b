import re
from typing import Any

from rest_framework import pagination
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request

_POSITIVE_INTEGER = re.compile(r"^[1-9][0-9]{0,8}$")


class PageNumberPagination(pagination.PageNumberPagination):
    """{count, next, previous, results}; `page_size` lets a client ask for up to 100 a page.

    DRF alone serves the first page for `?page=` and the default size for `?page_size=ten`,
    answering something other than what was asked and hiding the client's bug. Here a `page`
    that is not a positive integer is 404 like any page that does not exist, and a bad
    `page_size` is 400.
    """

    page_size_query_param = "page_size"
    max_page_size = 100
    last_page_strings = ()  # `?page=last` was never documented; a page is a number.

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list | None:
        params = request.query_params
        if self.page_query_param in params and not _POSITIVE_INTEGER.match(params[self.page_query_param]):
            raise NotFound(self.invalid_page_message)
        if self.page_size_query_param in params and not _POSITIVE_INTEGER.match(params[self.page_size_query_param]):
            raise ValidationError({self.page_size_query_param: ["page_size must be a positive integer."]})
        return super().paginate_queryset(queryset, request, view)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": self.page_query_param,
                "required": False,
                "in": "query",
                "description": "A page number; anything else, or a page past the end, is 404.",
                "schema": {"type": "integer", "minimum": 1},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"Results per page, default {self.page_size}; above {self.max_page_size} "
                f"counts as {self.max_page_size}.",
                "schema": {"type": "integer", "minimum": 1},
            },
        ]
