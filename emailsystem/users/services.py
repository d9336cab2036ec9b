"""Writes for accounts and tokens."""

from django.contrib.auth import get_user_model
from django.db import transaction
from rest_framework.authtoken.models import Token

from emailsystem.users.authentication import token_is_expired
from emailsystem.users.models import User


def user_create(*, email: str, username: str, password: str) -> User:
    """Create an active, non-staff user. The caller has validated the password."""
    return get_user_model().objects.create_user(email=email, username=username, password=password)


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
