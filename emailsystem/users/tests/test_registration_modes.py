"""REGISTRATION: open (anyone), domains (REGISTRATION_DOMAINS only) or closed (admins create users).

A refused registration is a 403 saying why, and writes nothing; settings refuse a bad value at start.
"""

import os
import subprocess
import sys

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from emailsystem.users.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

REGISTER = "/api/v1/users/register/"
PASSWORD = "plum-orchard-lantern-7"


def register(email: str, username: str = "ada", **overrides):
    return APIClient().post(
        REGISTER, {"email": email, "username": username, "password": PASSWORD, **overrides}, format="json"
    )


def accounts() -> list[tuple]:
    return list(get_user_model().objects.order_by("pk").values_list("pk", "email", "username"))


def test_open_registration_takes_any_address(settings):
    settings.REGISTRATION = "open"

    assert register("ada@anywhere.example").status_code == 201


def test_closed_registration_refuses_everyone_with_403_and_writes_nothing(settings):
    settings.REGISTRATION = "closed"
    UserFactory(email="taken@example.org")
    before = accounts()

    for payload in ({"email": "ada@example.org"}, {"email": "taken@example.org"}, {"email": "not-an-address"}):
        response = register(**payload)

        assert response.status_code == 403, payload
        assert response.json() == {
            "detail": "Registration is closed: accounts are created by the service's admins. Ask one of them.",
            "code": "registration_closed",
        }
    assert accounts() == before


def test_domain_registration_takes_the_listed_domains_only(settings):
    settings.REGISTRATION = "domains"
    settings.REGISTRATION_DOMAINS = ["example.org", "example.net"]

    assert register("ada@example.org").status_code == 201
    assert register("Bob@EXAMPLE.net", username="bob").status_code == 201
    before = accounts()
    for address in ("eve@evil.example", "eve@sub.example.org", "eve@example.org.evil.example"):
        refused = register(address, username="eve")

        assert refused.status_code == 403, address
        assert refused.json() == {
            "email": [
                "Registration is open to addresses at example.org, example.net only; ask an admin for an account."
            ],
            "code": "registration_domain_refused",
        }
    assert accounts() == before


def test_domain_registration_still_answers_400_for_a_duplicate(settings):
    settings.REGISTRATION = "domains"
    settings.REGISTRATION_DOMAINS = ["example.org"]
    UserFactory(email="ada@example.org")

    response = register("ADA@example.org", username="other")

    assert response.status_code == 400
    assert "email" in response.json()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"REGISTRATION": "invite-only"}, "REGISTRATION must be open, domains or closed (got 'invite-only')"),
        ({"REGISTRATION": "domains"}, "REGISTRATION=domains needs REGISTRATION_DOMAINS"),
        ({"PUBLIC_BASE_URL": "mail.example.org"}, "PUBLIC_BASE_URL must start with http:// or https://"),
        ({"EMAIL_VERIFICATION_MAX_AGE": "10"}, "EMAIL_VERIFICATION_MAX_AGE must be at least 60"),
    ],
)
def test_settings_refuse_to_start_with_a_bad_value_naming_the_variable(env, message):
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "emailsystem.settings", "DJANGO_DEBUG": "1", **env}

    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert result.returncode != 0
    assert message in result.stderr
