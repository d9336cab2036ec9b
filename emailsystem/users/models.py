from django.contrib.auth.models import AbstractUser
from django.contrib.auth.models import UserManager as DjangoUserManager
from django.db import models
from django.db.models.functions import Lower


def normalize_email_address(address: str) -> str:
    """Addresses compare case-insensitively everywhere in this service, so store them lowercased."""
    return address.strip().lower()


class UserManager(DjangoUserManager["User"]):
    @classmethod
    def normalize_email(cls, email: str | None) -> str:
        return normalize_email_address(email or "")


class User(AbstractUser):
    """A person or application that sends email. The email address is the login."""

    email = models.EmailField("email address", unique=True)
    daily_quota = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Recipients this user may send to per day (UTC). Empty: the SEND_DAILY_QUOTA default.",
    )

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS = ["username"]

    objects = UserManager()

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="users_user_email_ci_unique")]

    def save(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        self.email = normalize_email_address(self.email)
        super().save(*args, **kwargs)

    def __str__(self) -> str:
        return self.email
