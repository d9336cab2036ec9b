"""POST /api/v1/webhooks/sendgrid/: SendGrid's Event Webhook.

No user authenticates here: the signature is the authentication. The order matters: the
source address's rate (THROTTLE_SENDGRID_WEBHOOK) is counted first, then the body's size is
bounded (RequestSizeLimitMiddleware, REQUEST_MAX_BYTES), then the signature is checked over
the raw bytes, and only a signed body is parsed.
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
from emailsystem.users.services import attempt_reserve
from emailsystem.users.throttles import client_ip, digest

logger = logging.getLogger(__name__)


def webhook_attempts_key(request: HttpRequest) -> str:
    """The counter key of the webhook requests from the request's source address (users.AttemptCounter)."""
    return f"sendgrid-webhook:{digest(client_ip(request))}"


def throttled_response(wait: int) -> JsonResponse:
    response = JsonResponse(
        {"detail": f"Too many requests. Try again in {wait} second{'s' if wait != 1 else ''}.", "code": "throttled"},
        status=429,
    )
    response["Retry-After"] = str(wait)
    return response


@csrf_exempt  # a server-to-server POST, authenticated by its signature, never by a browser session
@never_cache
@require_POST
def sendgrid_webhook(request: HttpRequest) -> JsonResponse:
    """Count, verify, parse and apply one batch: 200 with counts, 429 past the source address's rate,
    403 unsigned/tampered/stale, 400 not JSON."""
    wait = attempt_reserve(key=webhook_attempts_key(request), rate=settings.THROTTLE_SENDGRID_WEBHOOK)
    if wait:
        logger.warning("sendgrid webhook refused: too many requests from this address", extra={"retry_after": wait})
        return throttled_response(wait)
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
