from typing import Any, ClassVar

from django.contrib.auth.models import AbstractUser
from django.contrib.auth.models import UserManager as DjangoUserManager
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone


def normalize_email_address(address: str) -> str:
    """Addresses compare case-insensitively everywhere in this service, so store them lowercased."""
    return address.strip().lower()


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
    """Attempts at logging in (or registering) under one key in the current window.

    Keys name who is counted: `ip:<digest>` a client address, `account:<user id>` an existing
    account, `account:<digest>` a login name no account has. Digests keep typed names (which
    are sometimes passwords typed into the wrong field) and addresses out of the table.
    """

    key = models.CharField(max_length=80, unique=True)
    count = models.PositiveIntegerField(default=0)
    # The window ends here; the next attempt after it starts a new window at 1.
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.key}: {self.count} until {self.expires_at:%Y-%m-%d %H:%M:%S}"
