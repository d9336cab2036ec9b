"""POST /api/v1/webhooks/sendgrid/: SendGrid's Event Webhook.

No user authenticates here: the signature is the authentication. The order matters: the
body's size is bounded first (RequestSizeLimitMiddleware, REQUEST_MAX_BYTES), then the
signature is checked over the raw bytes, and only a signed body is parsed.
"""

import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from emailsystem.core.exceptions import request_too_large_response
from emailsystem.emails.webhooks.parsing import BatchError, batch_parse
from emailsystem.emails.webhooks.services import sendgrid_events_apply
from emailsystem.emails.webhooks.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, SignatureError, signature_verify

logger = logging.getLogger(__name__)


@csrf_exempt  # a server-to-server POST, authenticated by its signature, never by a browser session
@never_cache
@require_POST
def sendgrid_webhook(request: HttpRequest) -> JsonResponse:
    """Verify, parse and apply one batch: 200 with counts, 403 unsigned/tampered/stale, 400 not JSON."""
    try:
        body = request.body
    except RequestDataTooBig:
        return JsonResponse(request_too_large_response(settings.REQUEST_MAX_BYTES), status=413)
    try:
        signature_verify(
            key_text=settings.SENDGRID_WEBHOOK_PUBLIC_KEY,
            body=body,
            signature=request.headers.get(SIGNATURE_HEADER),
            timestamp=request.headers.get(TIMESTAMP_HEADER),
            max_age_seconds=settings.SENDGRID_WEBHOOK_MAX_AGE_SECONDS,
        )
    except SignatureError as error:
        logger.warning("sendgrid webhook refused: %s", error)
        return JsonResponse({"detail": "Invalid or missing signature.", "code": "invalid_signature"}, status=403)
    try:
        batch = batch_parse(body)
    except BatchError as error:
        return JsonResponse({"detail": str(error), "code": "invalid_batch"}, status=400)
    summary = sendgrid_events_apply(batch=batch)
    logger.info("sendgrid webhook: %s", summary.as_dict())
    return JsonResponse(summary.as_dict())
