"""The browsable API as a person meets it: DRF's renderer with the service's own pages.

Two things DRF's renderer does not do for this API:
- A list whose filters were refused (a 400 for `?start_time=yesterday`) still offers the
  Filters dialog, bound to the refused values and showing each field's error, so the person
  can correct them; DRF only draws the dialog above a page of results.
- A GET of a POST-only page (register, login, logout) answers 405 for clients; in a browser
  the page shows its form and description without that 405 above it.

This module must not import rest_framework.views, which reads DEFAULT_RENDERER_CLASSES (this class).
"""

from typing import Any

from django.db.models import QuerySet
from rest_framework import renderers, status
from rest_framework.request import Request


class BrowsableAPIRenderer(renderers.BrowsableAPIRenderer):
    def get_context(self, data: Any, accepted_media_type: str, renderer_context: dict[str, Any]) -> dict[str, Any]:
        context = super().get_context(data, accepted_media_type, renderer_context)
        view, request, response = renderer_context["view"], renderer_context["request"], renderer_context["response"]
        if (
            context.get("filter_form") is None
            and response.status_code == status.HTTP_400_BAD_REQUEST
            and getattr(view, "action", None) == "list"
        ):
            context["filter_form"] = refused_filter_form(view, request)
        context["form_only"] = (
            response.status_code == status.HTTP_405_METHOD_NOT_ALLOWED
            and request.method == "GET"
            and "POST" in view.allowed_methods
        )
        return context


def refused_filter_form(view: Any, request: Request) -> str | None:
    """The filter backends' HTML forms for a list view, bound to the request's query."""
    queryset: QuerySet = view.get_queryset()
    forms = [
        backend().to_html(request, queryset, view)
        for backend in getattr(view, "filter_backends", ())
        if hasattr(backend, "to_html")
    ]
    return "".join(form for form in forms if form) or None
