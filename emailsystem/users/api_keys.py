"""Writes for API keys (docs/sending/api-keys.md): issue, revoke, record a use.

Apart from services.py because the authentication class records each key's use, and services.py
imports the authentication module (token_is_expired).
"""

import datetime
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from emailsystem.users.models import API_KEY_PREFIX_LENGTH, ApiKey, ApiKeyScope, User, api_key_digest, api_key_generate

# last_used is written at most this often per key: a busy key costs one UPDATE a minute, not one a request.
USE_RECORD_INTERVAL = datetime.timedelta(seconds=60)
# New keys drawn when a prefix is taken: 42 random bits make even one repeat rare.
ISSUE_ATTEMPTS = 5


@dataclass(frozen=True)
class IssuedApiKey:
    """A new key: the stored row, and the key itself, which is never stored and exists only here."""

    api_key: ApiKey
    key: str


def api_key_create(*, user: User, name: str, scope: ApiKeyScope) -> IssuedApiKey:
    """Issue a key for `user`; only its digest is stored, so the returned key is the only copy."""
    for _ in range(ISSUE_ATTEMPTS):
        key = api_key_generate(scope)
        try:
            with transaction.atomic():
                api_key = ApiKey.objects.create(
                    user=user, name=name, scope=scope, prefix=key[:API_KEY_PREFIX_LENGTH], key_hash=api_key_digest(key)
                )
        except IntegrityError:  # the prefix is another key's
            continue
        return IssuedApiKey(api_key=api_key, key=key)
    raise RuntimeError(f"no free key prefix in {ISSUE_ATTEMPTS} attempts")


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    """Revoke a key: the next request that presents it gets 401. Revoking a revoked key changes nothing."""
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


def api_keys_revoke(*, api_keys: QuerySet[ApiKey]) -> int:
    """Revoke every key of `api_keys` that is not revoked yet; how many that was."""
    return api_keys.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())


def api_key_use_record(*, api_key: ApiKey, now: datetime.datetime | None = None) -> None:
    """Set last_used to now when it is empty or older than USE_RECORD_INTERVAL.

    Within the interval it costs nothing (last_used came with the key). Otherwise one UPDATE of
    its own, apart from the lookup, whose condition lets only one of several concurrent requests
    write it.
    """
    now = now or timezone.now()
    cutoff = now - USE_RECORD_INTERVAL
    if api_key.last_used is not None and api_key.last_used >= cutoff:
        return
    stale = Q(last_used__isnull=True) | Q(last_used__lt=cutoff)
    ApiKey.objects.filter(stale, pk=api_key.pk).update(last_used=now)
    api_key.last_used = now
