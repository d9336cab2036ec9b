import hashlib
import json
import logging
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.serializers import BaseSerializer

from emailsystem.core import metrics
from emailsystem.core.schema import error_responses
from emailsystem.emails.attachments import attachments_by_email
from emailsystem.emails.delivery.schedule import sent_email_cancel
from emailsystem.emails.filters import SentEmailFilter
from emailsystem.emails.models import RECIPIENT_ONLY_STATUSES, EmailStatus, SentEmail, Suppression
from emailsystem.emails.permissions import StaffModelPermissionsOrReadOnly
from emailsystem.emails.selectors import (
    deliveries_by_email,
    email_template_list,
    sent_email_list,
    sent_email_log_rows,
    suppression_list,
)
from emailsystem.emails.serializers import (
    SENT_EMAIL_DETAIL_VIEW,
    EmailTemplateSerializer,
    SendAcceptedSerializer,
    SentEmailCancelSerializer,
    SentEmailCreateSerializer,
    SentEmailListSerializer,
    SentEmailSerializer,
    SuppressionSerializer,
    sent_email_log_page,
)
from emailsystem.emails.services import idempotent_send, sent_email_create, suppression_delete
from emailsystem.emails.template_views import TemplateToolsMixin
from emailsystem.users.models import User

logger = logging.getLogger(__name__)

# Route any id to the view, so that a malformed one is answered like any other request:
# 401 or 403 before anything else, then a JSON 404 (DRF's default refuses "." in the URL).
ANY_ID = "[^/]+"

_ADMIN_WRITE_ERRORS = error_responses(401, 403, 404, 413)
_BODY_ERRORS = error_responses(400, 415)
_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The id; any other value is 404.")
# Reads need no login (a token, if sent, must be valid: an unknown one is 401).
# Typed Any: drf-spectacular annotates `auth` as Sequence[str], but it takes (and AutoSchema.get_auth
# returns) security requirement objects like these.
_ANYONE: Any = [{"tokenAuth": []}, {"bearerAuth": []}, {"cookieAuth": []}, {}]


@extend_schema_view(
    list=extend_schema(
        auth=_ANYONE, responses={200: EmailTemplateSerializer(many=True), **error_responses(400, 401, 404)}
    ),
    retrieve=extend_schema(
        auth=_ANYONE, parameters=[_ID], responses={200: EmailTemplateSerializer, **error_responses(401, 404)}
    ),
    create=extend_schema(responses={201: EmailTemplateSerializer, **_BODY_ERRORS, **_ADMIN_WRITE_ERRORS}),
    update=extend_schema(
        parameters=[_ID], responses={200: EmailTemplateSerializer, **_BODY_ERRORS, **_ADMIN_WRITE_ERRORS}
    ),
    partial_update=extend_schema(
        parameters=[_ID], responses={200: EmailTemplateSerializer, **_BODY_ERRORS, **_ADMIN_WRITE_ERRORS}
    ),
    destroy=extend_schema(parameters=[_ID], responses={204: None, **_ADMIN_WRITE_ERRORS}),
)
class EmailTemplateViewSet(TemplateToolsMixin, viewsets.ModelViewSet):
    """Email templates. Anyone may read them; staff create, change or delete them when they hold
    the model's permission for that action, as in the admin (superusers hold them all).

    Subject and bodies use Django template syntax, filled in per send from `context`:
    `Hello {{ name }}`.
    """

    queryset = email_template_list()
    serializer_class = EmailTemplateSerializer
    permission_classes = [StaffModelPermissionsOrReadOnly]
    # What an API key with the send scope may call here (users.authentication.send_key_allows).
    send_key_actions = frozenset({"preview"})
    lookup_value_regex = ANY_ID


def request_fingerprint(data: Any) -> str:
    """A stable hash of the request body, to tell a retry from a different request under one key."""
    if hasattr(data, "lists"):  # form data: keep every value of repeated fields
        data = {key: values for key, values in data.lists()}
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="Makes a retry safe: the same key with the same body within 24 hours returns the first "
    "answer and sends nothing; with a different body it is 409. 1 to 255 printable characters.",
)


_ISO_MOMENT = "An ISO 8601 date (2026-11-22) or datetime (2026-11-22T09:30:00Z); without an offset it is UTC."
LOG_FILTER_PARAMETERS = [
    OpenApiParameter(
        "recipient",
        {"type": "array", "items": {"type": "string", "maxLength": 254}},
        explode=True,
        style="form",
        description="Emails sent to any of these addresses: repeat the parameter (?recipient=a&recipient=b) "
        "or separate them with commas (?recipient=a,b).",
    ),
    OpenApiParameter(
        "tag",
        {"type": "array", "items": {"type": "string", "maxLength": 50}},
        explode=True,
        style="form",
        description="Emails with any of these tags: repeat the parameter (?tag=a&tag=b) or separate them "
        "with commas (?tag=a,b).",
    ),
    OpenApiParameter(
        "status",
        {"type": "string", "enum": [*EmailStatus.values, *RECIPIENT_ONLY_STATUSES, ""]},
        description="The email's status, or a status only recipients have (the emails with at least one "
        "recipient in it); empty means any (the browsable API's filter form sends it empty).",
    ),
    OpenApiParameter("start_time", OpenApiTypes.STR, description=f"Sent at or after. {_ISO_MOMENT}"),
    OpenApiParameter(
        "end_time", OpenApiTypes.STR, description=f"Sent at or before. {_ISO_MOMENT} A date includes that whole day."
    ),
]


@extend_schema_view(
    create=extend_schema(
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={202: SendAcceptedSerializer, **error_responses(400, 401, 403, 409, 413, 415, 429)},
    ),
    list=extend_schema(
        parameters=LOG_FILTER_PARAMETERS,
        responses={200: SentEmailListSerializer(many=True), **error_responses(400, 401, 403, 404)},
    ),
    retrieve=extend_schema(parameters=[_ID], responses={200: SentEmailSerializer, **error_responses(401, 403, 404)}),
    cancel=extend_schema(
        request=None, parameters=[_ID], responses={200: SentEmailSerializer, **error_responses(401, 403, 404, 409)}
    ),
)
class SentEmailViewSet(
    mixins.CreateModelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Send email, and read back the log of what you sent (yours only).

    Send with a template: `{"recipients": ["a@example.com"], "template": 1, "context": {"name": "Ada"}}`,
    or ad hoc: `{"recipients": [...], "subject": "...", "body": "...", "html_body": "..."}`.
    An `Idempotency-Key` header makes a retried send safe.

    Filter the log with `recipient` and `tag` (repeatable, or several separated by commas), `start_time`,
    `end_time` and `status`; on this page, with the **Filters** button. Each email's `url` opens it.
    """

    filterset_class = SentEmailFilter
    lookup_value_regex = ANY_ID
    # What an API key with the send scope may call here (users.authentication.send_key_allows): not cancel.
    send_key_actions = frozenset({"create", "list", "retrieve"})

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request user
            return SentEmail.objects.none()
        user = self.request.user
        assert isinstance(user, User)  # the view's permissions let only a logged-in user through
        return sent_email_list(user=user, with_events=self.action in ("retrieve", "cancel"))

    def get_serializer_class(self) -> type[BaseSerializer]:
        if self.action == "create":
            return SentEmailCreateSerializer
        if self.action == "list":
            return SentEmailListSerializer
        if self.action == "cancel":
            return SentEmailCancelSerializer
        return SentEmailSerializer

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        user = request.user
        assert isinstance(user, User)  # the view's permissions let only a logged-in user through
        rows = self.paginate_queryset(self.filter_queryset(sent_email_log_rows(user=user)))
        assert rows is not None  # DEFAULT_PAGINATION_CLASS is set
        deliveries = deliveries_by_email(email_ids=[row["id"] for row in rows])
        # One reverse() for the page; each email's URL differs only by its id.
        template = reverse(SENT_EMAIL_DETAIL_VIEW, kwargs={"pk": 0}, request=request)
        head, _, tail = template.rpartition("/0/")
        page = sent_email_log_page(
            rows,
            deliveries,
            url_for=lambda pk: f"{head}/{pk}/{tail}",
            attachments=attachments_by_email(email_ids=[row["id"] for row in rows]),
        )
        return self.get_paginated_response(page)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = SentEmailCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = request.user
        assert isinstance(user, User)  # the view's permissions let only a logged-in user through
        key = request.headers.get("Idempotency-Key")
        (receipt,), replayed = idempotent_send(
            user=user,
            key=key,
            # Only a key is compared with it: hashing a body with 1 MiB attached takes about 5 ms.
            fingerprint=request_fingerprint(request.data) if key is not None else "",
            send=lambda: [sent_email_create(user=user, **serializer.validated_data)],
        )
        if not replayed:
            metrics.sends_accepted(recipients=len(receipt.recipients))
            logger.info(
                "send accepted",
                extra={"email_id": receipt.email_id, "recipients": len(receipt.recipients), "user_id": user.pk},
            )
        return Response(SendAcceptedSerializer(receipt).data, status=status.HTTP_202_ACCEPTED)

    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Cancel a scheduled email (`send_at`) before it is handed on: 200 with status `canceled`
        (again 200 if it already is), 409 once it has been handed on or was never scheduled."""
        sent_email_cancel(sent_email=self.get_object())
        return Response(SentEmailSerializer(self.get_object(), context=self.get_serializer_context()).data)


@extend_schema_view(
    list=extend_schema(responses={200: SuppressionSerializer(many=True), **error_responses(400, 401, 403, 404)}),
    destroy=extend_schema(parameters=[_ID], responses={204: None, **error_responses(401, 403, 404)}),
)
class SuppressionViewSet(mixins.ListModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """Addresses your sends skip: they hard-bounced, reported spam or unsubscribed (yours only).

    Sends to them answer `suppressed` and are not attempted. DELETE an entry to send to the
    address again (after the person asked for it, or the mailbox was fixed).
    """

    serializer_class = SuppressionSerializer
    lookup_value_regex = ANY_ID

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request user
            return Suppression.objects.none()
        user = self.request.user
        assert isinstance(user, User)  # the view's permissions let only a logged-in user through
        return suppression_list(user=user)

    def perform_destroy(self, instance: Any) -> None:
        suppression_delete(suppression=instance)
