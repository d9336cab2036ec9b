from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from emailsystem.users.models import normalize_email_address


class EmailOrUsernameBackend(ModelBackend):
    """Authenticate with an email address (the login) or, for older clients, the username."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        email: str | None = None,
        **kwargs: Any,
    ) -> Any:
        identifier = email or username or kwargs.get(get_user_model().USERNAME_FIELD)
        if not identifier or password is None:
            return None
        users = get_user_model()._default_manager
        if "@" in identifier:
            user = users.filter(email=normalize_email_address(identifier)).first()
        else:
            user = users.filter(username=identifier).first()
        if user is None:
            # Spend the same time as a real check, so timing does not reveal which accounts exist.
            get_user_model()().set_password(password)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None
