import factory
from django.utils import timezone

from emailsystem.users.models import User, normalize_email_address

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
