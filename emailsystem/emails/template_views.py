"""The template endpoints that try a template out: preview one with a context, check a template's text."""

from typing import TYPE_CHECKING, Any

from drf_spectacular.utils import extend_schema
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.viewsets import GenericViewSet

from emailsystem.core.exceptions import ApplicationError
from emailsystem.core.schema import error_responses
from emailsystem.emails.permissions import TemplateAuthor
from emailsystem.emails.rendering import RenderError, template_render
from emailsystem.emails.serializers.template_tools import (
    RenderedEmailSerializer,
    TemplatePreviewSerializer,
    TemplateSourceSerializer,
    TemplateVariablesSerializer,
)
from emailsystem.emails.template_check import TemplateSourceError, template_variables

_SERIALIZERS = {"preview": TemplatePreviewSerializer, "validate": TemplateSourceSerializer}

# The checker sees the viewset the mixin is for (self.action, get_object); at run time it adds no base.
if TYPE_CHECKING:
    _ViewSet = GenericViewSet
else:
    _ViewSet = object


class TemplateToolsMixin(_ViewSet):
    """`preview` and `validate` for the template viewset. Neither stores anything."""

    def get_serializer_class(self) -> type[BaseSerializer]:
        return _SERIALIZERS.get(self.action or "") or super().get_serializer_class()

    @extend_schema(
        request=TemplatePreviewSerializer,
        responses={200: RenderedEmailSerializer, **error_responses(400, 401, 404, 413, 415)},
    )
    @action(detail=True, methods=["post"], permission_classes=[IsAuthenticated])
    def preview(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Render this template with `context` as a send would: the subject and bodies it would
        store and send, or the 400 the send would get (a missing variable, a render error).
        Nothing is stored or sent."""
        template = self.get_object()
        serializer = TemplatePreviewSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            rendered = template_render(
                subject=template.subject,
                body=template.body,
                html_body=template.html_body,
                context=serializer.validated_data.get("context") or {},
                allow_missing_variables=template.allow_missing_variables,
            )
        except RenderError as error:
            raise ApplicationError(error.message, field=error.field) from None
        return Response(RenderedEmailSerializer(rendered).data)

    @extend_schema(
        request=TemplateSourceSerializer,
        responses={200: TemplateVariablesSerializer, **error_responses(400, 401, 403, 413, 415)},
    )
    @action(detail=False, methods=["post"], permission_classes=[TemplateAuthor])
    def validate(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Check a template's text without saving it: the context variables it uses, or a 400
        naming the part that does not compile and the line.

        A template uses a variable when it prints it, tests it in `{% if %}`, loops over it in
        `{% for %}`, or passes it to a filter or tag; loop variables, `forloop` and `{% with %}`
        names are the template's own and not listed. Paths are dotted (`order.id`)."""
        serializer = TemplateSourceSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            found = template_variables(**serializer.validated_data)
        except TemplateSourceError as error:
            where = f" (line {error.line})" if error.line else ""
            raise ApplicationError(f"Template syntax error{where}: {error.message}", field=error.field) from None
        return Response(TemplateVariablesSerializer({"variables": found.variables, "parts": found.by_part}).data)
