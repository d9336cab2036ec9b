from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from emailsystem.users.throttles import LoginThrottled


class LoginThrottledMiddleware:
    """A throttled log-in on Django's own forms (the admin's, /api-auth/login/) gets a 429 page
    that says when to try again, with Retry-After. The API answers its own, as JSON."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, LoginThrottled):
            return None
        wait = int(exception.wait or 1)
        response = render(
            request,
            "users/login_throttled.html",
            {"wait": wait, "minutes": -(-wait // 60), "login_url": request.get_full_path()},
            status=429,
        )
        response["Retry-After"] = str(wait)
        return response
