"""The browsable API as a person meets it: DRF's renderer with the service's own pages.

Two things DRF's renderer does not do for this API:
- A list whose filters were refused (a 400 for `?start_time=yesterday`) still offers the
  Filters dialog, bound to the refused values and showing each field's error, so the person
  can correct them; DRF only draws the dialog above a page of results.
- A GET of a POST-only page (register, login, logout) answers 405 for clients; in a browser
  the page shows its form and description without that 405 above it.
- A POST that the serializer accepted but a service refused (a template variable missing
  from the context, the daily quota) redraws the form with what was typed and the message
  under its field, as a serializer's own refusal does; DRF would draw an empty form.

This module must not import rest_framework.views, which reads DEFAULT_RENDERER_CLASSES (this class).
"""

from collections.abc import Mapping
from typing import Any

from rest_framework import renderers, status
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.utils.serializer_helpers import ReturnDict


class BrowsableAPIRenderer(renderers.BrowsableAPIRenderer):
    renderer_context: Mapping[str, Any]  # set by render() before it calls the methods below

    def get_filter_form(self, data: Any, view: Any, request: Request) -> str | None:
        form = super().get_filter_form(data, view, request)
        refused = self.renderer_context["response"].status_code == status.HTTP_400_BAD_REQUEST
        if form is None and refused and getattr(view, "action", None) == "list":
            # DRF draws the dialog only when `data` is a page of results; an empty list stands in.
            form = super().get_filter_form([], view, request)
        return form

    def get_rendered_html_form(self, data: Any, view: Any, method: str, request: Request) -> Any:
        refused = status.is_client_error(self.renderer_context["response"].status_code)
        if (
            refused
            and method == request.method == "POST"
            and isinstance(data, dict)
            and getattr(data, "serializer", None) is None
            and hasattr(view, "get_serializer")
        ):
            data = ReturnDict(data, serializer=refused_input(view, data, request))
        return super().get_rendered_html_form(data, view, method, request)

    def get_context(
        self, data: Any, accepted_media_type: str | None, renderer_context: Mapping[str, Any]
    ) -> dict[str, Any]:
        context = super().get_context(data, accepted_media_type, renderer_context)
        view, request, response = renderer_context["view"], renderer_context["request"], renderer_context["response"]
        context["form_only"] = (
            response.status_code == status.HTTP_405_METHOD_NOT_ALLOWED
            and request.method == "GET"
            and "POST" in view.allowed_methods
        )
        return context


def refused_input(view: Any, answer: dict[str, Any], request: Request) -> Any:
    """The view's serializer bound to the refused request, carrying the answer's messages as its errors."""
    serializer = view.get_serializer(data=request.data)
    serializer.is_valid()
    errors = {name: messages for name, messages in answer.items() if name in serializer.fields}
    if not errors:
        errors = {api_settings.NON_FIELD_ERRORS_KEY: [answer.get("detail", "")]}
    serializer._errors = ReturnDict(errors, serializer=serializer)
    return serializer
