"""Endpoint secrets: generated the Standard Webhooks way, stored encrypted, used to sign.

A secret is `whsec_` and the base64 of 32 random bytes; the signature is
`v1,<base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>">` keyed by those bytes.
Stored secrets are encrypted with Fernet (AES-128-CBC and HMAC-SHA256) under a key derived from
DJANGO_SECRET_KEY, so a database dump alone does not let anyone sign as us. Changing
DJANGO_SECRET_KEY makes the stored secrets unreadable: endpoints then need a rotation each.
"""

import base64
import hashlib
import hmac
import secrets as random_source
from functools import cache

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

PREFIX = "whsec_"
# Standard Webhooks asks for 24 to 64 bytes.
SECRET_BYTES = 32


class SecretUnreadable(Exception):
    """A stored secret that the current DJANGO_SECRET_KEY cannot decrypt."""


def secret_generate() -> str:
    return PREFIX + base64.b64encode(random_source.token_bytes(SECRET_BYTES)).decode("ascii")


@cache
def _fernet(secret_key: str) -> Fernet:
    key = hashlib.sha256(f"emailsystem.outbound.secrets:{secret_key}".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def secret_encrypt(secret: str) -> str:
    return _fernet(settings.SECRET_KEY).encrypt(secret.encode()).decode("ascii")


def secret_decrypt(token: str) -> str:
    try:
        return _fernet(settings.SECRET_KEY).decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("the endpoint's secret was stored under another DJANGO_SECRET_KEY") from None


def signature(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256>` of `id.timestamp.body` keyed by the secret's bytes."""
    key = base64.b64decode(secret.removeprefix(PREFIX))
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_header(secrets: list[str], webhook_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature header: one signature per secret, space separated (a rotation's two)."""
    return " ".join(signature(secret, webhook_id, timestamp, body) for secret in secrets)
