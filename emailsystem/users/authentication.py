"""API token authentication with an optional maximum age (TOKEN_MAX_AGE)."""

import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed

TOKEN_EXPIRED = "Token has expired. Log in again to get a new one."  # noqa: S105 (a message, not a secret)


def token_is_expired(token: Token, *, now: datetime.datetime | None = None) -> bool:
    """True when TOKEN_MAX_AGE is set and the token was issued longer ago than that."""
    max_age = settings.TOKEN_MAX_AGE
    if not max_age:
        return False
    return (now or timezone.now()) - token.created > datetime.timedelta(seconds=max_age)


class ExpiringTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, refusing tokens older than TOKEN_MAX_AGE with a 401.

    The age comes from `Token.created`, already loaded by the one query DRF makes, so an
    expiring token costs no extra query. Logging in again replaces an expired token
    (`users.services.token_get_or_create`).
    """

    def authenticate_credentials(self, key: str) -> tuple[Any, Token]:
        user, token = super().authenticate_credentials(key)
        if token_is_expired(token):
            raise AuthenticationFailed(TOKEN_EXPIRED, code="token_expired")
        return user, token
