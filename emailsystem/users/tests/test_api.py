"""Register, log in, log out: through HTTP, as a client would."""

import os
import subprocess
import sys

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from emailsystem.users.serializers import LOGIN_FAILED
from emailsystem.users.tests.factories import DEFAULT_PASSWORD, UserFactory

REGISTER = "/api/v1/users/register/"
LOGIN = "/api/v1/users/login/"
LOGOUT = "/api/v1/users/logout/"
GOOD_PASSWORD = "plum-orchard-lantern-7"

pytestmark = pytest.mark.django_db


def register(client, **overrides):
    payload = {"email": "Ada@Example.com", "username": "ada", "password": GOOD_PASSWORD, **overrides}
    return client.post(REGISTER, payload, format="json")


def test_register_returns_the_account_without_the_password(api_client):
    response = register(api_client)

    assert response.status_code == 201
    assert response.json() == {
        "email": "ada@example.com",
        "username": "ada",
        "email_verified": False,
        "message": "We mailed a link to ada@example.com; follow it within 3 days to send email from this address.",
    }
    user = get_user_model().objects.get(username="ada")
    assert user.check_password(GOOD_PASSWORD)
    assert not user.is_staff
    assert not user.email_verified


def test_register_refuses_an_email_that_exists_in_any_letter_case(api_client):
    UserFactory(email="ada@example.com")

    response = register(api_client, email="ADA@example.COM", username="other")

    assert response.status_code == 400
    assert "email" in response.json()
    assert get_user_model().objects.count() == 1


def test_register_refuses_a_taken_username(api_client):
    UserFactory(username="ada")

    response = register(api_client, email="new@example.com", username="ADA")

    assert response.status_code == 400
    assert "username" in response.json()


@pytest.mark.parametrize(
    "password",
    ["short1", "password123", "12345678901", "ada-example-ada"],
    ids=["too-short", "common", "numeric", "like-the-email"],
)
def test_register_applies_the_password_validators(api_client, password):
    response = register(api_client, password=password, email="ada-example-ada@example.com")

    assert response.status_code == 400
    assert response.json()["password"]
    assert not get_user_model().objects.exists()


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": ""}, "email"),
        ({"username": "has spaces"}, "username"),
        ({"username": "x" * 151}, "username"),
    ],
)
def test_register_refuses_bad_fields(api_client, payload, field):
    response = register(api_client, **payload)

    assert response.status_code == 400
    assert field in response.json()
    assert not get_user_model().objects.exists()


def test_register_requires_every_field(api_client):
    response = api_client.post(REGISTER, {}, format="json")

    assert response.status_code == 400
    assert set(response.json()) == {"email", "username", "password"}


def test_register_refuses_malformed_json(api_client):
    response = api_client.post(REGISTER, '{"email": ', content_type="application/json")

    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]


@pytest.mark.parametrize("key", ["username", "email"])
def test_login_with_the_email_returns_a_token(api_client, user, key):
    response = api_client.post(LOGIN, {key: user.email.upper(), "password": DEFAULT_PASSWORD}, format="json")

    assert response.status_code == 200
    assert response.json() == {"email": user.email, "token": Token.objects.get(user=user).key, "email_verified": True}


def test_login_with_the_username_also_works(api_client, user):
    response = api_client.post(LOGIN, {"username": user.username, "password": DEFAULT_PASSWORD}, format="json")

    assert response.status_code == 200


def test_logging_in_twice_returns_the_same_token(api_client, user):
    first = api_client.post(LOGIN, {"username": user.email, "password": DEFAULT_PASSWORD}, format="json")
    second = api_client.post(LOGIN, {"username": user.email, "password": DEFAULT_PASSWORD}, format="json")

    assert first.json()["token"] == second.json()["token"]


def test_wrong_password_and_unknown_user_get_the_same_answer(api_client, user):
    wrong_password = api_client.post(LOGIN, {"username": user.email, "password": "nope"}, format="json")
    unknown_user = api_client.post(LOGIN, {"username": "ghost@example.com", "password": "nope"}, format="json")

    assert wrong_password.status_code == unknown_user.status_code == 400
    assert wrong_password.json() == unknown_user.json() == {"non_field_errors": [LOGIN_FAILED]}


def test_an_inactive_user_cannot_log_in(api_client):
    user = UserFactory(is_active=False)

    response = api_client.post(LOGIN, {"username": user.email, "password": DEFAULT_PASSWORD}, format="json")

    assert response.status_code == 400
    assert not Token.objects.exists()


def test_login_without_an_identifier_names_the_field(api_client):
    response = api_client.post(LOGIN, {"password": "x"}, format="json")

    assert response.status_code == 400
    assert "username" in response.json()


def test_logout_revokes_the_token(user_client):
    assert user_client.get("/api/v1/emails/sent-email/").status_code == 200

    response = user_client.post(LOGOUT)

    assert response.status_code == 200
    assert response.json() == {}
    assert user_client.get("/api/v1/emails/sent-email/").status_code == 401


def test_logout_needs_authentication(api_client):
    assert api_client.post(LOGOUT).status_code == 401


def test_register_and_login_are_throttled_per_ip(api_client, settings, user):
    settings.THROTTLE_AUTH = (3, 60)

    answers = [
        api_client.post(LOGIN, {"username": user.email, "password": "wrong"}, format="json").status_code
        for _ in range(4)
    ]
    throttled = api_client.post(REGISTER, {}, format="json")
    spoofed = api_client.post(
        LOGIN, {"username": user.email, "password": "wrong"}, format="json", HTTP_X_FORWARDED_FOR="10.9.9.9"
    )
    elsewhere = APIClient(REMOTE_ADDR="10.0.0.2").post(
        LOGIN, {"username": user.email, "password": DEFAULT_PASSWORD}, format="json"
    )

    assert answers == [400, 400, 400, 429]
    assert throttled.status_code == 429
    assert "Retry-After" in throttled.headers
    assert spoofed.status_code == 429, "X-Forwarded-For must not reset the per-IP counter"
    assert elsewhere.status_code == 200


def test_createsuperuser_noinput_reads_the_environment(db, django_db_blocker):
    from django.core.management import call_command

    env = {
        "DJANGO_SUPERUSER_EMAIL": "Root@Example.com",
        "DJANGO_SUPERUSER_USERNAME": "root",
        "DJANGO_SUPERUSER_PASSWORD": GOOD_PASSWORD,
    }
    old = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        call_command("createsuperuser", "--noinput", verbosity=0)
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key)
            else:
                os.environ[key] = value

    root = get_user_model().objects.get(email="root@example.com")
    assert root.is_superuser and root.is_staff and root.username == "root"
    assert root.check_password(GOOD_PASSWORD)


def test_settings_refuse_to_start_without_a_secret_key():
    env = {key: value for key, value in os.environ.items() if key not in {"DJANGO_SECRET_KEY", "DJANGO_DEBUG"}}
    env["DJANGO_SETTINGS_MODULE"] = "emailsystem.settings"

    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], env=env, capture_output=True, text=True, check=False
    )

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is required" in result.stderr
