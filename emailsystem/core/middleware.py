"""Refuse oversized request bodies before any view reads them."""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from emailsystem.core.exceptions import request_too_large_response


class RequestSizeLimitMiddleware:
    """Answer 413 when Content-Length exceeds REQUEST_MAX_BYTES.

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
        if length > settings.REQUEST_MAX_BYTES:
            return JsonResponse(request_too_large_response(settings.REQUEST_MAX_BYTES), status=413)
        return self.get_response(request)
