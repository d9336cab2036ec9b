"""Fixtures shared by the Django apps' tests: API clients, a user, another user, an admin.

Throttle counters are rows (users.AttemptCounter), so each test's transaction isolates them too.
"""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from emailsystem.emails.tests.factories import EmailTemplateFactory
from emailsystem.users.tests.factories import UserFactory


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def other_user(db):
    return UserFactory()


@pytest.fixture
def admin(db):
    return UserFactory(is_staff=True, is_superuser=True)


def token_client(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def user_client(user) -> APIClient:
    return token_client(user)


@pytest.fixture
def other_client(other_user) -> APIClient:
    return token_client(other_user)


@pytest.fixture
def admin_client_api(admin) -> APIClient:
    return token_client(admin)


@pytest.fixture
def template(db):
    return EmailTemplateFactory()
