"""Verifying SendGrid's Event Webhook signature: ECDSA P-256 with SHA-256 over timestamp + raw body.

SendGrid shows the verification key as base64 DER (SubjectPublicKeyInfo); a PEM copy of it is
accepted too. Headers: X-Twilio-Email-Event-Webhook-Signature (base64 DER ECDSA signature)
and X-Twilio-Email-Event-Webhook-Timestamp (Unix seconds).
"""

import base64
import binascii
import functools
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
# A DER ECDSA P-256 signature is at most 72 bytes; anything longer is not one.
SIGNATURE_MAX_CHARS = 200
# Unix seconds have 10 digits until the year 2286; a longer "timestamp" is not one (and a
# few hundred digits would overflow the float arithmetic of the age check).
TIMESTAMP_MAX_DIGITS = 12


class SignatureError(Exception):
    """Why a request's signature was refused (logged, never shown to the caller in detail)."""


class PublicKeyError(ValueError):
    """The configured public key cannot be used."""


@functools.lru_cache(maxsize=4)
def public_key_load(text: str) -> ec.EllipticCurvePublicKey:
    """The configured key as an EC P-256 public key; PublicKeyError says what is wrong with it."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = load_pem_public_key(text.encode())
        else:
            key = load_der_public_key(base64.b64decode(text, validate=True))
    except (ValueError, binascii.Error, TypeError) as error:
        raise PublicKeyError(f"not a base64 DER or PEM public key ({error.__class__.__name__})") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise PublicKeyError("not an ECDSA P-256 public key")
    return key


def signature_verify(
    *,
    key_text: str,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    max_age_seconds: int,
    now: float | None = None,
) -> None:
    """Raise SignatureError unless `signature` signs `timestamp + body` with the key and the timestamp is fresh."""
    if not key_text:
        raise SignatureError("SENDGRID_WEBHOOK_PUBLIC_KEY is not set: every request is refused")
    if not signature or not timestamp:
        raise SignatureError("unsigned request")
    if (
        len(signature) > SIGNATURE_MAX_CHARS
        or len(timestamp) > TIMESTAMP_MAX_DIGITS
        or not timestamp.isascii()
        or not timestamp.isdigit()
    ):
        raise SignatureError("malformed signature headers")
    age = (time.time() if now is None else now) - int(timestamp)
    if abs(age) > max_age_seconds:
        raise SignatureError(f"timestamp {age:.0f} s away from now (window {max_age_seconds} s)")
    try:
        key = public_key_load(key_text)
        key.verify(base64.b64decode(signature, validate=True), timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except PublicKeyError as error:
        raise SignatureError(f"SENDGRID_WEBHOOK_PUBLIC_KEY is unusable: {error}") from None
    except (InvalidSignature, binascii.Error, ValueError):
        raise SignatureError("signature does not match") from None
