import hashlib
import json
import logging
from typing import Any

from rest_framework import mixins, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from emailsystem.core import metrics
from emailsystem.emails.filters import SentEmailFilter
from emailsystem.emails.permissions import IsAdminOrReadOnly
from emailsystem.emails.selectors import (
    deliveries_by_email,
    email_template_list,
    sent_email_list,
    sent_email_log_rows,
    suppression_list,
)
from emailsystem.emails.serializers import (
    EmailTemplateSerializer,
    SentEmailCreateSerializer,
    SentEmailListSerializer,
    SentEmailSerializer,
    SuppressionSerializer,
    send_accepted_answer,
    sent_email_log_page,
)
from emailsystem.emails.services import idempotent_send, sent_email_create, suppression_delete

logger = logging.getLogger(__name__)


class EmailTemplateViewSet(viewsets.ModelViewSet):
    """Email templates. Anyone may read them; only admins create, change or delete them.

    Subject and bodies use Django template syntax, filled in per send from `context`:
    `Hello {{ name }}`.
    """

    queryset = email_template_list()
    serializer_class = EmailTemplateSerializer
    permission_classes = [IsAdminOrReadOnly]


def request_fingerprint(data: Any) -> str:
    """A stable hash of the request body, to tell a retry from a different request under one key."""
    if hasattr(data, "lists"):  # form data: keep every value of repeated fields
        data = {key: values for key, values in data.lists()}
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class SentEmailViewSet(
    mixins.CreateModelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Send email, and read back the log of what you sent (yours only).

    Send with a template: `{"recipients": ["a@example.com"], "template": 1, "context": {"name": "Ada"}}`,
    or ad hoc: `{"recipients": [...], "subject": "...", "body": "...", "html_body": "..."}`.
    An `Idempotency-Key` header makes a retried send safe.

    Filter the log with `recipient` (repeatable), `start_time`, `end_time` and `status`.
    """

    filterset_class = SentEmailFilter

    def get_queryset(self) -> Any:
        return sent_email_list(user=self.request.user, with_events=self.action == "retrieve")

    def get_serializer_class(self) -> type[BaseSerializer]:
        if self.action == "create":
            return SentEmailCreateSerializer
        if self.action == "list":
            return SentEmailListSerializer
        return SentEmailSerializer

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        rows = self.paginate_queryset(self.filter_queryset(sent_email_log_rows(user=request.user)))
        deliveries = deliveries_by_email(email_ids=[row["id"] for row in rows])
        return self.get_paginated_response(sent_email_log_page(rows, deliveries))

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = SentEmailCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        answer, replayed = idempotent_send(
            user=request.user,
            key=request.headers.get("Idempotency-Key"),
            fingerprint=request_fingerprint(request.data),
            send=lambda: send_accepted_answer(sent_email_create(user=request.user, **serializer.validated_data)),
        )
        if not replayed:
            metrics.sends_accepted(recipients=len(answer["recipients"]))
            logger.info(
                "send accepted",
                extra={"email_id": answer["id"], "recipients": len(answer["recipients"]), "user_id": request.user.pk},
            )
        return Response(answer, status=status.HTTP_202_ACCEPTED)


class SuppressionViewSet(mixins.ListModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """Addresses your sends skip: they hard-bounced, reported spam or unsubscribed (yours only).

    Sends to them answer `suppressed` and are not attempted. DELETE an entry to send to the
    address again (after the person asked for it, or the mailbox was fixed).
    """

    serializer_class = SuppressionSerializer

    def get_queryset(self) -> Any:
        return suppression_list(user=self.request.user)

    def perform_destroy(self, instance: Any) -> None:
        suppression_delete(suppression=instance)
