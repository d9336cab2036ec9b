from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from emailsystem.users.models import normalize_email_address
from emailsystem.users.services import attempt_release
from emailsystem.users.throttles import login_attempt_count, login_name_key


class EmailOrUsernameBackend(ModelBackend):
    """Authenticate with an email address (the login) or, for older clients, the username.

    Every login form (the API's, /api-auth/login/, the admin's) checks passwords here, so the
    log-in throttles live here too: the attempt is counted before the password is checked, and
    LoginThrottled (429) stops it unchecked once the IP or the account is over its limit. A
    successful log-in gives its account attempt back: only failures lock an account.
    """

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
        account_key = login_name_key(user, identifier)
        login_attempt_count(request=request, account_key=account_key)
        if user is None:
            # Spend the same time as a real check, so timing does not reveal which accounts exist.
            get_user_model()().set_password(password)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            attempt_release(key=account_key)
            return user
        return None
