"""Register and log in are throttled per client IP (THROTTLE_AUTH); X-Forwarded-For counts only behind NUM_PROXIES.

The bursts below release their threads together, each with its own database connection, as
requests to several web processes would arrive.
"""

import datetime

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from emailsystem.core.tests.concurrency import run_concurrently
from emailsystem.users.models import AttemptCounter
from emailsystem.users.services import attempt_reserve
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


# Threads in a burst against the limit of 3: enough that a count read before it is written
# would let several through.
BURST = 10


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_registrations_from_one_ip_lets_exactly_the_limit_through():
    def register(n: int) -> int:
        return APIClient(REMOTE_ADDR="203.0.113.50").post(REGISTER, new_account(n), format="json").status_code

    statuses = run_concurrently(BURST, register)

    assert sorted(statuses) == [201] * 3 + [429] * (BURST - 3), statuses


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("window", ["new", "ended"])
def test_a_burst_at_one_counter_counts_exactly_the_limit(window):
    # "new": no row yet, so the threads race to insert it; "ended": the row's window is over,
    # so they race to start the next one.
    key = "ip:burst"
    if window == "ended":
        AttemptCounter.objects.create(key=key, count=3, expires_at=timezone.now() - datetime.timedelta(seconds=1))

    waits = run_concurrently(BURST, lambda _: attempt_reserve(key=key, rate=(3, 60)))

    assert waits.count(0) == 3, waits
    assert all(0 < wait <= 60 for wait in waits if wait), waits
    assert AttemptCounter.objects.get(key=key).count == 3
