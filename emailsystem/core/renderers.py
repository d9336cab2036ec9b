"""The browsable API as a person meets it: DRF's renderer with the service's own pages.

What DRF's renderer does not do for this API:
- The Filters dialog belongs to a list that was read (GET), not to the answer to a POST.
- A list whose filters were refused (a 400 for `?start_time=yesterday`) still offers the
  Filters dialog, bound to the refused values and showing each field's error, so the person
  can correct them; DRF only draws the dialog above a page of results.
- A GET of a POST-only page (register, login, logout) answers 405 for clients; in a browser
  the page shows its form and description without that 405 above it.
- Below a refused POST, the HTML form is the view's input form holding what was sent, with each
  refused field's message under it (a service's refusal too: a template variable missing from
  the context, the daily quota); DRF would draw an empty form.
- Below an answer an output serializer shaped (a send's 202, a preview's 200), the HTML form is
  the view's input form holding what was sent; DRF draws the answer's fields as the next input.
  An answer without a serializer keeps DRF's empty form (an issued API key's page: the form is
  for the next key).
- The Raw data box below a refused JSON POST holds the JSON that was sent, also when it did not
  parse, so it can be corrected and posted again; DRF resets it to a blank skeleton.
- A serializer none of whose fields an HTML form can carry (a batch's list of messages) gets
  only the Raw data form, not DRF's form of "not supported in HTML input" notes.

This module must not import rest_framework.views, which reads DEFAULT_RENDERER_CLASSES (this class).
"""

import json
from collections.abc import Mapping
from typing import Any

from rest_framework import renderers, serializers, status
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.request import Request, is_form_media_type, override_method
from rest_framework.settings import api_settings
from rest_framework.utils.serializer_helpers import ReturnDict

from emailsystem.core.fields import RAW_DATA_ONLY_TEMPLATE
from emailsystem.core.parsers import UNPARSED_JSON

# Templates of fields an HTML form cannot carry: DRF's print "not supported in HTML input".
_NOT_FORM_INPUTS = frozenset({"list_field.html", "dict_field.html", "list_fieldset.html", RAW_DATA_ONLY_TEMPLATE})


class BrowsableAPIRenderer(renderers.BrowsableAPIRenderer):
    renderer_context: Mapping[str, Any]  # set by render() before it calls the methods below

    def get_filter_form(self, data: Any, view: Any, request: Request) -> str | None:
        if request.method != "GET":
            # Filters narrow a list that was read. DRF takes any answer with "results" for a page of
            # one: a batch's 202 {"results": [...]} made it ask BatchSendView for a queryset (a 500).
            return None
        form = super().get_filter_form(data, view, request)
        refused = self.renderer_context["response"].status_code == status.HTTP_400_BAD_REQUEST
        if form is None and refused and getattr(view, "action", None) == "list":
            # DRF draws the dialog only when `data` is a page of results; an empty list stands in.
            form = super().get_filter_form([], view, request)
        return form

    def get_rendered_html_form(self, data: Any, view: Any, method: str, request: Request) -> Any:
        if method == "POST" and "POST" in view.allowed_methods and hasattr(view, "get_serializer"):
            with override_method(view, request, method) as posting:
                if not self.show_form_for_method(view, method, posting, None):
                    return None
                blank = view.get_serializer()
            if not has_form_inputs(blank):
                return None
            answered_by = getattr(data, "serializer", None)
            if request.method == method and not isinstance(answered_by, type(blank)):
                answer = data if isinstance(data, dict) else {}
                if self.refused():
                    data = ReturnDict(answer, serializer=sent_input(view, request, answer))
                elif answered_by is not None:
                    data = ReturnDict(answer, serializer=sent_input(view, request, None))
        return super().get_rendered_html_form(data, view, method, request)

    def get_raw_data_form(self, data: Any, view: Any, method: str, request: Request) -> Any:
        form = super().get_raw_data_form(data, view, method, request)
        if form is not None and method == request.method and self.refused() and hasattr(view, "get_serializer"):
            sent = sent_json(view, request)
            if sent is not None:
                form.initial = {**form.initial, "_content": sent}
        return form

    def refused(self) -> bool:
        """Whether the answer being drawn is a client error (4xx)."""
        return status.is_client_error(self.renderer_context["response"].status_code)

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


def has_form_inputs(serializer: Any) -> bool:
    """Whether an HTML form of `serializer` has a field a person can fill in; a serializer without
    fields (a button that posts nothing) has its form too."""
    styles = renderers.HTMLFormRenderer.default_style
    writable = [
        {**styles[field], **field.style}
        for field in serializer.fields.values()
        if not field.read_only and not isinstance(field, serializers.HiddenField)
    ]
    templates = [style.get("template") or style["base_template"] for style in writable]
    return not templates or any(template not in _NOT_FORM_INPUTS for template in templates)


def sent_data(request: Request) -> Any:
    """The request's body as parsed; empty when it did not parse."""
    try:
        return request.data
    except (ParseError, UnsupportedMediaType):
        return {}


def sent_input(view: Any, request: Request, refusal: dict[str, Any] | None) -> Any:
    """The view's input serializer holding what the request sent, with the refusal's messages as its errors.

    It is not validated again: the view did, and validating can act (a login's authenticates).
    """
    serializer = view.get_serializer(data=sent_data(request))
    serializer._validated_data = {}
    serializer._data = serializer.get_initial()
    errors: dict[str, Any] = {}
    if refusal is not None:
        errors = {name: messages for name, messages in refusal.items() if name in serializer.fields}
        if not errors:
            errors = {api_settings.NON_FIELD_ERRORS_KEY: [refusal.get("detail", "")]}
    serializer._errors = ReturnDict(errors, serializer=serializer)
    return serializer


def sent_json(view: Any, request: Request) -> str | None:
    """The JSON this request sent, for the Raw data box: as typed when it did not parse, else
    re-indented with any password blanked. None for form posts and for views that take a password
    in a body that did not parse."""
    passwords = [
        name for name, field in view.get_serializer().fields.items() if field.style.get("input_type") == "password"
    ]
    unparsed = request.parser_context.get(UNPARSED_JSON)
    if unparsed is not None:
        return None if passwords else unparsed
    if is_form_media_type(request.content_type):
        return None
    sent = sent_data(request)
    if isinstance(sent, dict):
        sent = {name: "" if name in passwords else value for name, value in sent.items()}
    return json.dumps(sent, indent=4, ensure_ascii=False)
