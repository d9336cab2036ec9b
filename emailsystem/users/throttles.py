"""Throttles of registering and logging in, counted in the database (services.attempt_reserve).

Per client IP (THROTTLE_AUTH): every registration and every password check, on any login
form. Per account (THROTTLE_LOGIN_ACCOUNT): failed password checks against one account, from
any IP. The counters are rows shared by every web process, and an attempt is counted before
its password is checked, so parallel attempts to several workers never exceed the limits.
"""

import hashlib
import logging
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from rest_framework.exceptions import Throttled
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from emailsystem.users.models import User, normalize_email_address
from emailsystem.users.services import account_attempts_key, attempt_reserve

logger = logging.getLogger(__name__)


class LoginThrottled(Throttled):
    """Too many log-in attempts from this IP or against this account; nothing was checked.

    The API answers it as JSON (DRF's handler); Django's login forms through
    users.middleware.LoginThrottledMiddleware. Both answer 429 with Retry-After.
    """

    wait: float | None  # Throttled.__init__ sets it; the stubs leave it out

    default_detail = "Too many log-in attempts."
    extra_detail_singular = "Try again in {wait} second."
    extra_detail_plural = "Try again in {wait} seconds."


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:40]


def client_ip(request: HttpRequest | Request) -> str:
    """The client's address as DRF's throttles see it: X-Forwarded-For only behind NUM_PROXIES proxies.

    A WSGI server that gives no REMOTE_ADDR (not gunicorn, not runserver) puts every such
    request in one count, "unknown".
    """
    return BaseThrottle().get_ident(request) or "unknown"  # type: ignore[arg-type]  # it reads only request.META


def ip_attempts_key(request: HttpRequest | Request) -> str:
    return f"ip:{digest(client_ip(request))}"


def login_name_key(user: User | None, identifier: str) -> str:
    """The account's key; for a name no account has, the name's, so that both lock alike."""
    if user is not None:
        return account_attempts_key(user)
    return f"account:{digest(normalize_email_address(identifier))}"


def login_attempt_count(*, request: HttpRequest | Request | None, account_key: str) -> None:
    """Count a password check against the IP's and the account's limits, or raise LoginThrottled.

    Without a request (a test client's login()), only the account's limit applies.
    """
    if request is not None:
        wait = attempt_reserve(key=ip_attempts_key(request), rate=settings.THROTTLE_AUTH)
        if wait:
            logger.warning("log-in refused: too many attempts from this address", extra={"retry_after": wait})
            raise LoginThrottled(wait=wait)
    wait = attempt_reserve(key=account_key, rate=settings.THROTTLE_LOGIN_ACCOUNT)
    if wait:
        logger.warning("log-in refused: too many failed attempts against one account", extra={"retry_after": wait})
        raise LoginThrottled(wait=wait)


class AuthRateThrottle(BaseThrottle):
    """Registering, per client IP (THROTTLE_AUTH), in the same count as the IP's log-in attempts."""

    retry_after = 0

    def allow_request(self, request: Request, view: APIView) -> bool:
        self.retry_after = attempt_reserve(key=ip_attempts_key(request), rate=settings.THROTTLE_AUTH)
        return not self.retry_after

    def wait(self) -> Any:
        return self.retry_after
