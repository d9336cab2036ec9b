"""Writes for accounts, tokens, sender identity (docs/sending/sender-identity.md), and the attempt counters
(log-ins, registrations, SendGrid webhook requests)."""

import datetime
import math
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core import signing
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token

from emailsender.addresses import ascii_domain
from emailsystem.core.exceptions import ApplicationError, ForbiddenError
from emailsystem.users.authentication import token_is_expired
from emailsystem.users.models import AttemptCounter, User, normalize_email_address
from emailsystem.users.signals import email_verification_requested
from emailsystem.users.sql import attempt_counter_add

REGISTRATION_CLOSED = "Registration is closed: accounts are created by the service's admins. Ask one of them."
VERIFICATION_SALT = "emailsystem.users.email-verification"
LINK_INVALID = (
    "This verification link is not valid: it is incomplete, was already used, or was made for an address "
    "the account no longer has. Log in and ask for a new one with POST /api/v1/users/verify-email/."
)
LINK_EXPIRED = "This verification link has expired. Log in and ask for a new one with POST /api/v1/users/verify-email/."
# Parentheses are not allowed in a username (UnicodeUsernameValidator): nobody can register this one.
SYSTEM_USERNAME = "(system)"
# A user id in a link is at most this many digits: a longer one cannot exist and would overflow the column.
_USER_ID_MAX_DIGITS = 18


def registration_check(*, email: str | None = None) -> None:
    """Raise ForbiddenError (403) unless REGISTRATION lets this address register.

    With `email` None, only whether registering is possible at all (it is not when closed).
    """
    if settings.REGISTRATION == "closed":
        raise ForbiddenError(REGISTRATION_CLOSED, code="registration_closed")
    domain = normalize_email_address(email or "").rpartition("@")[2]
    # Compared in the form addresses are stored in, however the setting spells an internationalised domain.
    allowed = {ascii_domain(allowed) or allowed for allowed in settings.REGISTRATION_DOMAINS}
    if settings.REGISTRATION == "domains" and email is not None and domain not in allowed:
        domains = ", ".join(settings.REGISTRATION_DOMAINS)
        raise ForbiddenError(
            f"Registration is open to addresses at {domains} only; ask an admin for an account.",
            field="email",
            code="registration_domain_refused",
        )


def user_create(*, email: str, username: str, password: str) -> User:
    """Create an active, non-staff user with an unverified address. The caller has validated the password."""
    return get_user_model().objects.create_user(email=email, username=username, password=password)


@transaction.atomic
def user_register(*, email: str, username: str, password: str, base_url: str) -> User:
    """Register through the API: check REGISTRATION, create the user, and mail a verification link.

    The link is recorded in the same transaction as the user: either both exist or neither.
    Raises ForbiddenError (403) when REGISTRATION refuses the address; nothing is written then.
    """
    registration_check(email=email)
    user = user_create(email=email, username=username, password=password)
    email_verification_send(user=user, base_url=base_url)
    return user


def system_user_get_or_create() -> User:
    """The account that records the emails the service sends on its own (verification links).

    Not the user a link is for: that user could read the link in their own log without having the
    mailbox. Inactive, with no usable password and an empty address (which no one else can have),
    so nobody logs in as it; admins see its emails in the admin.
    """
    user, _ = get_user_model().objects.get_or_create(
        username=SYSTEM_USERNAME, defaults={"email": "", "is_active": False, "password": make_password(None)}
    )
    return user


def verification_link_lifetime() -> str:
    """EMAIL_VERIFICATION_MAX_AGE in words, for messages: "3 days", "2 hours", "90 minutes"."""
    seconds = settings.EMAIL_VERIFICATION_MAX_AGE
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0 or unit == "minute":
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    raise AssertionError("unreachable")


def _verification_signer(user: User) -> signing.TimestampSigner:
    # The salt holds the address and the verified state, so a link proves only the address it was
    # mailed to, and only once: verifying, an admin's grant or revocation, or a new email all change it.
    return signing.TimestampSigner(salt=f"{VERIFICATION_SALT}:{user.email}:{user.verified_email}")


def email_verification_link(*, user: User, base_url: str) -> str:
    """An absolute link that verifies the user's current address for EMAIL_VERIFICATION_MAX_AGE seconds.

    The token is "<user id>:<timestamp>:<HMAC>" signed with DJANGO_SECRET_KEY: it cannot be guessed,
    and the user id in it is covered by the signature.
    """
    token = _verification_signer(user).sign(str(user.pk))
    return f"{base_url}{reverse('users:verify-email')}?{urlencode({'token': token})}"


@transaction.atomic
def email_verification_send(*, user: User, base_url: str) -> bool:
    """Mail a new verification link to the user's address; False (nothing sent) when it is already verified
    (or the account is inactive or has no address, as the system account).

    The receiver (emails.verification) records the email in this transaction (or the caller's).
    """
    if user.email_verified or not user.email or not user.is_active:
        return False
    url = email_verification_link(user=user, base_url=base_url)
    if not email_verification_requested.send(sender=User, user=user, url=url):
        raise ImproperlyConfigured("Nothing receives email_verification_requested: is emailsystem.emails installed?")
    return True


def email_verify(*, token: str) -> User:
    """Mark the address a verification link was made for as verified, and return its user.

    Raises ApplicationError (400, on `token`) for a link that is tampered with, made for another
    address, already used or expired; nothing changes then.
    """
    user_id = token.partition(":")[0]
    user = None
    if user_id.isascii() and user_id.isdigit() and len(user_id) <= _USER_ID_MAX_DIGITS:
        user = get_user_model().objects.filter(pk=int(user_id), is_active=True).first()
    if user is None:
        raise ApplicationError(LINK_INVALID, field="token", code="invalid_link")
    try:
        _verification_signer(user).unsign(token, max_age=settings.EMAIL_VERIFICATION_MAX_AGE)
    except signing.SignatureExpired:
        raise ApplicationError(LINK_EXPIRED, field="token", code="expired_link") from None
    except signing.BadSignature:
        raise ApplicationError(LINK_INVALID, field="token", code="invalid_link") from None
    return user_email_verified_set(user=user, verified=True)


def user_email_verified_set(*, user: User, verified: bool) -> User:
    """Grant (an admin, or a followed link) or revoke the user's current address as a sender identity."""
    user.verified_email = user.email if verified else ""
    user.email_verified_at = timezone.now() if verified else None
    user.save(update_fields=["verified_email", "email_verified_at"])
    return user


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

    Counted before the work it guards (a password check, a signature check) in one statement
    (sql.attempt_counter_add), so concurrent attempts in any number of processes never get more
    than the limit between them. The window starts with its first attempt; refused attempts
    neither count nor extend it.
    """
    limit, seconds = rate
    now = timezone.now()
    counted = attempt_counter_add(key=key, limit=limit, now=now, expires_at=now + datetime.timedelta(seconds=seconds))
    if counted == 1:
        # A window started. Keys come and go (every client address, every typed name): forget the ended windows.
        AttemptCounter.objects.filter(expires_at__lte=now).delete()
    if counted is not None:
        return 0
    expires_at = AttemptCounter.objects.filter(key=key).values_list("expires_at", flat=True).first()
    remaining = (expires_at - timezone.now()).total_seconds() if expires_at else 0
    return min(seconds, max(1, math.ceil(remaining)))


def attempt_release(*, key: str) -> None:
    """Give back one attempt counted under `key` in its current window (a log-in that succeeded)."""
    AttemptCounter.objects.filter(key=key, count__gt=0, expires_at__gt=timezone.now()).update(count=F("count") - 1)


def login_attempts_clear(*, user: User) -> int:
    """Forget the failed log-in attempts against this account: its owner may log in again now."""
    deleted, _ = AttemptCounter.objects.filter(key=account_attempts_key(user)).delete()
    return deleted
