"""Writes for accounts, tokens and the counters of log-in attempts."""

import datetime
import math

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from rest_framework.authtoken.models import Token

from emailsystem.users.authentication import token_is_expired
from emailsystem.users.models import AttemptCounter, User


def user_create(*, email: str, username: str, password: str) -> User:
    """Create an active, non-staff user. The caller has validated the password."""
    return get_user_model().objects.create_user(email=email, username=username, password=password)


def token_get_or_create(*, user: User) -> Token:
    """The user's API token; a new one when there is none or it is older than TOKEN_MAX_AGE.

    The row lock makes concurrent logins with an expired token agree on one new token: the
    second waits, finds the old row gone, and get_or_create returns the first one's token.
    """
    with transaction.atomic():
        token, created = Token.objects.select_for_update().get_or_create(user=user)
        if not created and token_is_expired(token):
            token.delete()
            token = Token.objects.create(user=user)
    return token


def token_revoke(*, user: User) -> int:
    """Delete the user's API token; every client using it gets 401 from now on."""
    deleted, _ = Token.objects.filter(user=user).delete()
    return deleted


def account_attempts_key(user: User) -> str:
    """The counter key of an existing account's log-in attempts."""
    return f"account:{user.pk}"


def attempt_reserve(*, key: str, rate: tuple[int, int]) -> int:
    """Count one attempt under `key` when its window has room: 0 when counted, else the seconds
    until the window ends.

    Counted before the work it guards (a password check), under a row lock, so concurrent
    attempts in any number of processes never get more than the limit between them. The window
    starts with its first attempt; refused attempts neither count nor extend it.
    """
    limit, seconds = rate
    now = timezone.now()
    with transaction.atomic():
        counter, created = AttemptCounter.objects.select_for_update().get_or_create(
            key=key, defaults={"count": 1, "expires_at": now + datetime.timedelta(seconds=seconds)}
        )
        if created:
            # Keys come and go (every client address, every typed name): forget the ended windows.
            AttemptCounter.objects.filter(expires_at__lte=now).delete()
            return 0
        if counter.expires_at <= now:
            counter.count, counter.expires_at = 1, now + datetime.timedelta(seconds=seconds)
        elif counter.count >= limit:
            return max(1, math.ceil((counter.expires_at - now).total_seconds()))
        else:
            counter.count += 1
        counter.save(update_fields=["count", "expires_at"])
    return 0


def attempt_release(*, key: str) -> None:
    """Give back one attempt counted under `key` in its current window (a log-in that succeeded)."""
    AttemptCounter.objects.filter(key=key, count__gt=0, expires_at__gt=timezone.now()).update(count=F("count") - 1)


def login_attempts_clear(*, user: User) -> int:
    """Forget the failed log-in attempts against this account: its owner may log in again now."""
    deleted, _ = AttemptCounter.objects.filter(key=account_attempts_key(user)).delete()
    return deleted
