"""Request-level concerns: oversized bodies, request ids, metrics."""

import hmac
import ipaddress
import os
import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from emailsender import topology
from emailsender.logs import current_request_id
from emailsystem.core import metrics
from emailsystem.core.exceptions import request_too_large_response


def request_max_bytes(path: str) -> int:
    """The largest body a path takes: REQUEST_MAX_BYTES, plus on the send endpoints (SEND_PATHS)
    the base64 of ATTACHMENTS_MAX_BYTES, so a send can carry its attachments."""
    if path in settings.SEND_PATHS:
        return settings.REQUEST_MAX_BYTES + 4 * -(-settings.ATTACHMENTS_MAX_BYTES // 3)
    return settings.REQUEST_MAX_BYTES


class RequestSizeLimitMiddleware:
    """Answer 413 when Content-Length exceeds the path's limit (request_max_bytes).

    Django alone would raise RequestDataTooBig only once a view reads the body, and turn
    it into a 400; a client deserves to know the body was too large, whatever the view.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse({"detail": "Content-Length is not a number."}, status=400)
        limit = request_max_bytes(request.path_info)
        if length > limit:
            return JsonResponse(request_too_large_response(limit), status=413)
        return self.get_response(request)


class ObservabilityMiddleware:
    """First in the stack: serves /metrics, gives each request an id, and measures it.

    The request id is the client's `X-Request-ID` when it is a sane id (1-128 of
    `[A-Za-z0-9._:-]`), else a new one; it is returned in the response's `X-Request-ID`, added
    to every log line made while serving the request, and carried with the send to the sender
    and the results process (docs/observability.md, "Request ids").

    /metrics is answered here, before host validation, sessions or the database: Prometheus
    scrapes the pod's address, which is not in DJANGO_ALLOWED_HOSTS, and a scrape should cost
    the workers nothing else. Who may read it: `metrics_allowed`.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info == "/metrics":
            return metrics_response(request)
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        # 128 random bits as hex: the same strength as uuid4().hex at a third of the cost.
        request_id = incoming if incoming and topology.valid_request_id(incoming) else os.urandom(16).hex()
        request.request_id = request_id  # type: ignore[attr-defined]  # our own attribute on Django's request
        token = current_request_id.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
        finally:
            current_request_id.reset(token)
        elapsed = time.perf_counter() - started
        match = request.resolver_match
        metrics.request_observed(
            route=match.view_name if match is not None else "unmatched",
            method=request.method,
            status=response.status_code,
            seconds=elapsed,
        )
        response["X-Request-ID"] = request_id
        return response


def metrics_allowed(request: HttpRequest) -> bool:
    """Who may read /metrics.

    With METRICS_TOKEN set: whoever sends `Authorization: Bearer <METRICS_TOKEN>`. Without it:
    only direct connections from loopback or private addresses that no proxy forwarded (no
    X-Forwarded-For / Forwarded header) - the cluster's Prometheus scraping the pod, or a
    port-forward - and never a client that came in through an Ingress or load balancer.
    """
    token = settings.METRICS_TOKEN
    if token:
        offered = request.META.get("HTTP_AUTHORIZATION", "")
        return hmac.compare_digest(offered.encode(), f"Bearer {token}".encode())
    if "HTTP_X_FORWARDED_FOR" in request.META or "HTTP_FORWARDED" in request.META:
        return False
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return address.is_loopback or address.is_private


def metrics_response(request: HttpRequest) -> HttpResponse:
    if not metrics_allowed(request):
        return JsonResponse({"detail": "Metrics are served to the cluster's Prometheus only."}, status=403)
    body, content_type = metrics.exposition()
    return HttpResponse(body, content_type=content_type)
