"""API tokens: revoked by the user (log out) or an admin, and optionally expiring (TOKEN_MAX_AGE)."""

import datetime

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from emailsystem.core.tests.concurrency import run_concurrently
from emailsystem.users.authentication import TOKEN_EXPIRED
from emailsystem.users.tests.factories import DEFAULT_PASSWORD

LOG = "/api/v1/emails/sent-email/"
pytestmark = pytest.mark.django_db


def login(user) -> str:
    response = APIClient().post("/api/v1/users/login/", {"username": user.email, "password": DEFAULT_PASSWORD})
    assert response.status_code == 200, response.json()
    return response.json()["token"]


def with_token(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def age(key: str, seconds: int) -> None:
    Token.objects.filter(key=key).update(created=timezone.now() - datetime.timedelta(seconds=seconds))


def test_logging_out_revokes_the_token_and_logging_in_issues_a_new_one(user):
    old = login(user)
    assert with_token(old).post("/api/v1/users/logout/").status_code == 200

    refused = with_token(old).get(LOG)
    new = login(user)

    assert refused.status_code == 401 and refused.json() == {"detail": "Invalid token."}
    assert new != old
    assert with_token(new).get(LOG).status_code == 200


def test_an_admin_revokes_a_users_token_from_the_admin(admin, user):
    key = login(user)
    browser = Client()
    browser.force_login(admin)

    page = browser.post("/admin/users/user/", {"action": "revoke_tokens", "_selected_action": [user.pk]}, follow=True)

    assert page.status_code == 200 and "Revoked 1 token(s)." in page.content.decode()
    assert with_token(key).get(LOG).status_code == 401


def test_tokens_do_not_expire_by_default(user, settings):
    settings.TOKEN_MAX_AGE = 0
    key = login(user)
    age(key, 10 * 365 * 24 * 3600)

    assert with_token(key).get(LOG).status_code == 200


def test_a_token_older_than_the_max_age_gets_401_with_a_clear_message(user, settings):
    settings.TOKEN_MAX_AGE = 3600
    key = login(user)
    age(key, 3599)
    assert with_token(key).get(LOG).status_code == 200

    age(key, 3601)
    response = with_token(key).get(LOG)

    assert response.status_code == 401
    assert response.json() == {"detail": TOKEN_EXPIRED}
    assert response.headers["WWW-Authenticate"] == "Token"


def test_logging_in_replaces_an_expired_token(user, settings):
    settings.TOKEN_MAX_AGE = 3600
    old = login(user)
    age(old, 7200)

    new = login(user)

    assert new != old
    assert with_token(new).get(LOG).status_code == 200
    assert not Token.objects.filter(key=old).exists()


def test_an_expiring_token_costs_no_extra_query(user, settings):
    client = with_token(login(user))
    client.get(LOG)  # warm up anything cached per process

    settings.TOKEN_MAX_AGE = 0
    with CaptureQueriesContext(connection) as without_expiry:
        assert client.get(LOG).status_code == 200
    settings.TOKEN_MAX_AGE = 3600
    with CaptureQueriesContext(connection) as with_expiry:
        assert client.get(LOG).status_code == 200

    assert len(with_expiry.captured_queries) == len(without_expiry.captured_queries)


@pytest.mark.django_db(transaction=True)
def test_concurrent_logins_with_an_expired_token_agree_on_one_new_token(user, settings):
    settings.TOKEN_MAX_AGE = 3600
    old = login(user)
    age(old, 7200)

    keys = run_concurrently(6, lambda _: login(user))

    assert len(set(keys)) == 1 and keys[0] != old
    assert list(Token.objects.filter(user=user).values_list("key", flat=True)) == [keys[0]]


@pytest.mark.parametrize(
    "key",
    ["0" * 40, "short", "x" * 300, "bad\x00key", "é" * 10],
    ids=["unknown", "short", "overlong", "nul", "non-ascii"],
)
def test_a_token_that_matches_nothing_gets_401_not_an_error(user, key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")

    response = client.get("/api/v1/emails/sent-email/")

    assert response.status_code == 401
    assert response.json()["detail"].startswith("Invalid token")


def test_the_token_authenticates_its_own_user(user):
    token = Token.objects.create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")

    response = client.get("/api/v1/emails/sent-email/")

    assert response.status_code == 200
    assert response.wsgi_request.user == user
