import factory
from django.utils import timezone
from rest_framework.test import APIClient

from emailsystem.users.api_keys import IssuedApiKey, api_key_create
from emailsystem.users.models import ApiKeyScope, User, normalize_email_address

DEFAULT_PASSWORD = "a-long-enough-passphrase-42"


class UserFactory(factory.django.DjangoModelFactory[User]):
    """A user whose address is verified (it may send from it); `UserFactory(unverified=True)` for one who has not
    followed the link yet."""

    class Meta:
        model = User

    class Params:
        unverified = factory.Trait(verified_email="", email_verified_at=None)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.django.Password(DEFAULT_PASSWORD)
    verified_email = factory.LazyAttribute(lambda user: normalize_email_address(user.email))
    email_verified_at = factory.LazyFunction(timezone.now)


def api_key_issue(user: User, scope: ApiKeyScope = ApiKeyScope.SEND, name: str = "billing-app") -> IssuedApiKey:
    """A new API key of `user`'s, as POST users/api-keys/ issues it: `.key` is the secret."""
    return api_key_create(user=user, name=name, scope=scope)


def bearer(key: str) -> APIClient:
    """A client presenting `Authorization: Bearer <key>`."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client
