"""Register and log in are throttled per client IP (THROTTLE_AUTH); X-Forwarded-For counts only behind NUM_PROXIES."""

import pytest
from rest_framework.test import APIClient

from emailsystem.users.tests.factories import DEFAULT_PASSWORD

REGISTER = "/api/v1/users/register/"
LOGIN = "/api/v1/users/login/"
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def three_a_minute(settings):
    settings.THROTTLE_AUTH = (3, 60)


def new_account(n: int) -> dict:
    return {"email": f"new{n}@example.com", "username": f"new{n}", "password": "plum-orchard-lantern-7"}


def test_registering_is_throttled_per_ip(api_client):
    answers = [api_client.post(REGISTER, new_account(n), format="json") for n in range(4)]

    assert [answer.status_code for answer in answers] == [201, 201, 201, 429]
    assert int(answers[-1].headers["Retry-After"]) > 0


def test_good_logins_count_too(api_client, user):
    credentials = {"username": user.email, "password": DEFAULT_PASSWORD}

    answers = [api_client.post(LOGIN, credentials, format="json").status_code for _ in range(4)]

    assert answers == [200, 200, 200, 429]


def test_an_invented_x_forwarded_for_does_not_buy_new_attempts_by_default(user, settings):
    assert settings.REST_FRAMEWORK["NUM_PROXIES"] == 0
    client = APIClient(REMOTE_ADDR="203.0.113.7")
    wrong = {"username": user.email, "password": "wrong"}

    answers = [
        client.post(LOGIN, wrong, format="json", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code for n in range(5)
    ]

    assert answers == [400, 400, 400, 429, 429]


def test_behind_a_proxy_each_forwarded_client_has_its_own_allowance(user, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    proxy = APIClient(REMOTE_ADDR="10.0.0.1")  # every request arrives from the proxy's address
    wrong = {"username": user.email, "password": "wrong"}

    first_client = [
        proxy.post(LOGIN, wrong, format="json", HTTP_X_FORWARDED_FOR="198.51.100.1").status_code for _ in range(4)
    ]
    second_client = proxy.post(LOGIN, wrong, format="json", HTTP_X_FORWARDED_FOR="198.51.100.2").status_code

    assert first_client == [400, 400, 400, 429]
    assert second_client == 400
