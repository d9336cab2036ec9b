"""POST emails/batch/: many sends in one request and one transaction."""

import logging
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from emailsystem.core import metrics
from emailsystem.core.schema import error_responses
from emailsystem.emails.batch import BatchRenderError, sent_email_batch_create
from emailsystem.emails.serializers.batch import BatchAcceptedSerializer, BatchSendSerializer
from emailsystem.emails.services import idempotent_send
from emailsystem.emails.views import IDEMPOTENCY_KEY_PARAMETER, request_fingerprint
from emailsystem.users.models import User

logger = logging.getLogger(__name__)


class BatchSendView(generics.GenericAPIView):
    """Send many emails in one request: `{"messages": [<a send>, ...]}`, each message as
    `sent-email/` takes it, 1 to `BATCH_MAX_MESSAGES`.

    Every message is checked and rendered first; if any is refused the whole batch is `400`,
    with each refused message's errors under its index, and nothing is written. Otherwise all
    are recorded in one transaction and each is delivered like a single send. The daily quota
    counts every recipient of the batch; an `Idempotency-Key` covers the whole batch.
    """

    serializer_class = BatchSendSerializer
    # What an API key with the send scope may call here (users.authentication.send_key_allows).
    send_key_actions = frozenset({"post"})

    @extend_schema(
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={202: BatchAcceptedSerializer, **error_responses(400, 401, 403, 409, 413, 415, 429)},
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = BatchSendSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = request.user
        assert isinstance(user, User)  # the view's permissions let only a logged-in user through
        key = request.headers.get("Idempotency-Key")
        try:
            receipts, replayed = idempotent_send(
                user=user,
                key=key,
                # Only a key is compared with it (views.SentEmailViewSet.create).
                fingerprint=request_fingerprint({"batch": request.data}) if key is not None else "",
                send=lambda: sent_email_batch_create(user=user, messages=serializer.validated_data["messages"]),
            )
        except BatchRenderError as error:
            raise ValidationError(
                {"messages": {str(index): {field: [message]} for index, (field, message) in error.errors.items()}}
            ) from None
        if not replayed:
            for receipt in receipts:
                metrics.sends_accepted(recipients=len(receipt.recipients))
            recipients = sum(len(receipt.recipients) for receipt in receipts)
            logger.info(
                "batch accepted",
                extra={"emails": len(receipts), "recipients": recipients, "user_id": user.pk},
            )
        return Response(BatchAcceptedSerializer({"results": receipts}).data, status=status.HTTP_202_ACCEPTED)
