import hashlib
import secrets
from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.contrib.auth.models import UserManager as DjangoUserManager
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from emailsender.addresses import ascii_domain


def normalize_email_address(address: str) -> str:
    """The one spelling of an address this service stores and compares: trimmed, lowercased, and
    its domain in its ASCII form (emailsender.addresses.ascii_domain). `Anna@Café.example` and
    `anna@xn--caf-dma.example` are one address: one account, one Recipient, one quota count,
    one suppression.

    ASCII rather than Unicode because it is the form DNS, SMTP without SMTPUTF8 and SendGrid's
    API take, so what is stored is what the sender sends, and each domain has exactly one (a
    Unicode spelling would still need IDNA's mapping to be one). A domain with no ASCII form
    is left lowercased, for the address rules to refuse.
    """
    address = address.strip()
    local, at, domain = address.rpartition("@")
    if not at:
        return address.lower()
    return f"{local.lower()}@{ascii_domain(domain) or domain.lower()}"


class UserManager(DjangoUserManager["User"]):
    @classmethod
    def normalize_email(cls, email: str | None) -> str:
        return normalize_email_address(email or "")

    def create_superuser(self, *args: Any, **kwargs: Any) -> "User":
        """A superuser's address counts as verified: `createsuperuser` (and `make run`'s demo admin)
        is run by whoever operates the server, who could grant any address in the admin anyway."""
        user = super().create_superuser(*args, **kwargs)
        user.verified_email = user.email
        user.email_verified_at = timezone.now()
        user.save(update_fields=["verified_email", "email_verified_at"])
        return user


class User(AbstractUser):
    """A person or application that sends email. The email address is the login."""

    email = models.EmailField("email address", unique=True)
    daily_quota = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Recipients this user may send to per day (UTC). Empty: the SEND_DAILY_QUOTA default.",
    )
    # The address its owner proved (a verification link) or an admin granted. Only while it equals
    # `email` may sends use the address as From or Reply-To: changing the email un-verifies it
    # without anyone having to remember to, and makes every link made for the old address invalid.
    verified_email = models.CharField(max_length=254, blank=True, default="", editable=False)
    email_verified_at = models.DateTimeField(null=True, blank=True, editable=False)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS = ["username"]

    objects: ClassVar[UserManager] = UserManager()

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="users_user_email_ci_unique")]

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.email = normalize_email_address(self.email)
        super().save(*args, **kwargs)

    def __str__(self) -> str:
        return self.email or self.username  # the system account has no address

    @property
    def email_verified(self) -> bool:
        """The current address was proved by its owner or granted by an admin."""
        return bool(self.verified_email) and self.verified_email == self.email


class AttemptCounter(models.Model):
    """Attempts under one key in the current window (services.attempt_reserve): log-ins and
    registrations, and requests to SendGrid's Event Webhook.

    Keys name who is counted: `ip:<digest>` a client address logging in or registering,
    `account:<user id>` an existing account, `account:<digest>` a login name no account has,
    `sendgrid-webhook:<digest>` an address posting to the webhook. Digests keep typed names
    (which are sometimes passwords typed into the wrong field) and addresses out of the table.
    """

    key = models.CharField(max_length=80, unique=True)
    count = models.PositiveIntegerField(default=0)
    # The window ends here; the next attempt after it starts a new window at 1.
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.key}: {self.count} until {self.expires_at:%Y-%m-%d %H:%M:%S}"


class ApiKeyScope(models.TextChoices):
    """What a request authenticated with a key may do (users.authentication.ApiKeyAuthentication)."""

    SEND = "send", "send: send email and read the emails sent"
    FULL = "full", "full: everything its user may do"


# 32 random bytes, 256 bits: a key cannot be guessed, and a fast hash stores it safely.
API_KEY_RANDOM_BYTES = 32
# Shown to its owner to tell keys apart: "es_s_" and 7 random characters (42 of the key's bits;
# 214 stay secret).
API_KEY_PREFIX_LENGTH = 12


def api_key_generate(scope: str) -> str:
    """A new key: `es_<s or f>_<43 URL-safe characters>`, so that a key found in a log or a
    repository says what it is and what it may do."""
    return f"es_{scope[0]}_{secrets.token_urlsafe(API_KEY_RANDOM_BYTES)}"


def api_key_digest(key: str) -> str:
    """The SHA-256 of a key, as stored. A key holds 256 random bits, so no one can search a list of
    likely keys against a stolen digest: a slow password hash (PBKDF2, Argon2) would protect nothing
    more, and would cost milliseconds on every request."""
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKey(models.Model):
    """A secret an application authenticates with (`Authorization: Bearer <key>`) in place of its
    user's login token. It acts as its user: quota, suppressions and the log are the user's.

    Only the key's digest is stored; the key itself is shown once, when it is issued
    (users.api_keys.api_key_create). A revoked key stays, for the admin's record, and never
    authenticates again.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, help_text="What the key is for, for its owner: billing-app.")
    scope = models.CharField(max_length=4, choices=ApiKeyScope.choices)
    prefix = models.CharField(max_length=API_KEY_PREFIX_LENGTH, unique=True, editable=False)
    # The lookup of every request authenticated with a key: unique, so one indexed read.
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created = models.DateTimeField(auto_now_add=True)
    # At most a minute old (users.api_keys.api_key_use_record); empty until the first use.
    last_used = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.prefix}... ({self.name})"

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None
