"""Every login form is throttled per client IP and per account, through the real HTTP routes.

The forms: the API's `users/login/` (JSON), DRF's `/api-auth/login/` and the admin's
`/admin/login/` (Django's LoginView). The per-account lock ends with its window (the cool-off),
which refused attempts do not extend; a successful log-in gives its attempt back.
"""

import datetime
from typing import TYPE_CHECKING

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token

from emailsystem.env import env_rate
from emailsystem.users.models import AttemptCounter
from emailsystem.users.tests.factories import DEFAULT_PASSWORD, UserFactory

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse  # the test client's response, in django-stubs only

pytestmark = pytest.mark.django_db

API_LOGIN = "/api/v1/users/login/"
FORMS = ("/api-auth/login/", "/admin/login/")
PATHS = (API_LOGIN, *FORMS)
REGISTER = "/api/v1/users/register/"


def attempt(
    path: str, name: str, password: str, ip: str | None = "203.0.113.9"
) -> tuple["_MonkeyPatchedWSGIResponse", Client]:
    """One log-in attempt on `path` from `ip`: (the answer, the client, which holds any session)."""
    client = Client(REMOTE_ADDR=ip)
    if path == API_LOGIN:
        response = client.post(path, {"username": name, "password": password}, content_type="application/json")
    else:
        response = client.post(path, {"username": name, "password": password, "next": "/admin/"})
    return response, client


def log_in(path: str, name: str, password: str, ip: str | None = "203.0.113.9") -> int:
    """The status of one log-in attempt."""
    return attempt(path, name, password, ip)[0].status_code


def refused_as_wrong(path: str) -> int:
    """The status a wrong password gets: the API's 400, or the form drawn again with its error."""
    return 400 if path == API_LOGIN else 200


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


@pytest.fixture
def limits(settings):
    """Small limits for these tests: 3 attempts per IP a minute, 4 failures per account in 15 minutes."""
    settings.THROTTLE_AUTH = (3, 60)
    settings.THROTTLE_LOGIN_ACCOUNT = (4, 900)
    return settings


@pytest.mark.parametrize("path", PATHS)
def test_every_login_form_refuses_an_ip_past_its_limit_even_with_the_right_password(limits, path):
    owner = UserFactory()

    wrong = [log_in(path, f"nobody{n}@example.com", "wrong") for n in range(3)]
    answer, client = attempt(path, owner.email, DEFAULT_PASSWORD)

    assert wrong == [refused_as_wrong(path)] * 3
    assert answer.status_code == 429
    assert 0 < int(answer["Retry-After"]) <= 60
    assert not logged_in(client)
    assert not Token.objects.filter(user=owner).exists()
    if path == API_LOGIN:
        assert answer.json()["detail"].startswith("Too many log-in attempts. Try again in ")
    else:
        assert "Too many log-in attempts" in answer.content.decode()
    assert log_in(path, owner.email, DEFAULT_PASSWORD, ip="203.0.113.10") in {200, 302}, "another IP is not held"


def test_the_ip_count_is_one_across_every_form_and_registering(limits):
    answers = [log_in(path, f"nobody{n}@example.com", "wrong") for n, path in enumerate(PATHS)]
    register = Client(REMOTE_ADDR="203.0.113.9").post(
        REGISTER,
        {"email": "new@example.com", "username": "new", "password": "plum-orchard-lantern-7"},
        content_type="application/json",
    )

    assert answers == [400, 200, 200]
    assert register.status_code == 429
    assert int(register["Retry-After"]) > 0


@pytest.mark.parametrize("path", PATHS)
def test_failures_against_one_account_from_many_ips_lock_it_on_every_form(limits, path):
    owner = UserFactory(username="ada", email="ada@example.com")
    # Four failures from four addresses, on every form, by email (any case) and by username.
    failures = [
        log_in(API_LOGIN, "ada@example.com", "wrong", ip="198.51.100.1"),
        log_in("/api-auth/login/", "ADA@example.com", "wrong", ip="198.51.100.2"),
        log_in("/admin/login/", "ada", "wrong", ip="198.51.100.3"),
        log_in(API_LOGIN, "ada", "wrong", ip="198.51.100.4"),
    ]

    answer, client = attempt(path, owner.email, DEFAULT_PASSWORD, ip="198.51.100.5")

    assert failures == [400, 200, 200, 400]
    assert answer.status_code == 429, "the right password is not checked while the account is locked"
    assert not logged_in(client)
    assert not Token.objects.filter(user=owner).exists()


def test_a_name_no_account_has_locks_exactly_like_an_account(limits):
    """The lock must not tell an attacker which accounts exist."""
    UserFactory(email="real@example.com")

    def attempts(name: str) -> list[int]:
        return [log_in(API_LOGIN, name, "wrong", ip=f"198.51.100.{n}") for n in range(6)]

    assert attempts("real@example.com") == attempts("invented@example.com") == [400] * 4 + [429] * 2


def test_a_successful_log_in_gives_its_attempt_back_so_only_failures_lock(limits):
    owner = UserFactory()

    def from_ip(n: int, password: str) -> int:
        return log_in(API_LOGIN, owner.email, password, ip=f"198.51.100.{n}")

    answers = [from_ip(n, password) for n, password in enumerate(["wrong", "wrong", DEFAULT_PASSWORD, "wrong"])]
    fourth_failure = from_ip(10, "wrong")
    locked = from_ip(11, DEFAULT_PASSWORD)

    assert answers == [400, 400, 200, 400]
    assert fourth_failure == 400
    assert locked == 429


def test_the_lock_ends_with_its_window_and_refused_attempts_do_not_extend_it(limits):
    owner = UserFactory()
    for n in range(4):
        log_in(API_LOGIN, owner.email, "wrong", ip=f"198.51.100.{n}")
    counter = AttemptCounter.objects.get(key=f"account:{owner.pk}")

    refused = [log_in(API_LOGIN, owner.email, "wrong", ip=f"198.51.100.{n}") for n in range(10, 15)]

    assert refused == [429] * 5
    assert AttemptCounter.objects.get(pk=counter.pk).expires_at == counter.expires_at
    # The window runs out (moved into the past instead of waiting 15 minutes): the owner gets in.
    AttemptCounter.objects.filter(pk=counter.pk).update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    assert log_in(API_LOGIN, owner.email, DEFAULT_PASSWORD, ip="198.51.100.20") == 200
    assert log_in("/admin/login/", owner.email, "wrong", ip="198.51.100.21") == 200  # counted afresh, not locked


def test_an_admin_lets_a_locked_account_log_in_again_now(limits, admin, client):
    owner = UserFactory()
    for n in range(4):
        log_in(API_LOGIN, owner.email, "wrong", ip=f"198.51.100.{n}")
    assert log_in(API_LOGIN, owner.email, DEFAULT_PASSWORD, ip="198.51.100.9") == 429
    client.force_login(admin)

    response = client.post(
        "/admin/users/user/", {"action": "allow_logging_in_now", "_selected_action": [owner.pk]}, follow=True
    )

    assert "Cleared the log-in lock of 1 user(s)." in response.content.decode()
    assert log_in(API_LOGIN, owner.email, DEFAULT_PASSWORD, ip="198.51.100.9") == 200


def test_a_request_without_a_client_address_is_counted_not_a_500(limits):
    """A WSGI environ without REMOTE_ADDR (the schema fuzzer's) shares one count."""
    answers = [log_in(API_LOGIN, f"nobody{n}@example.com", "wrong", ip=None) for n in range(4)]

    assert answers == [400, 400, 400, 429]


def test_the_counters_hold_neither_typed_names_nor_addresses(limits):
    log_in(API_LOGIN, "my-secret-passphrase", "wrong", ip="198.51.100.77")

    keys = " ".join(AttemptCounter.objects.values_list("key", flat=True))

    assert "my-secret-passphrase" not in keys
    assert "198.51.100.77" not in keys


@pytest.mark.parametrize(
    ("value", "expected"),
    [("20/min", (20, 60)), ("10/15min", (10, 900)), ("5/hour", (5, 3600)), ("100/d", (100, 86400)), ("3/30s", (3, 30))],
)
def test_throttle_rates_take_drfs_syntax_with_an_optional_count_before_the_unit(monkeypatch, value, expected):
    monkeypatch.setenv("THROTTLE_LOGIN_ACCOUNT", value)

    assert env_rate("THROTTLE_LOGIN_ACCOUNT", "10/15min") == expected


@pytest.mark.parametrize("value", ["ten/min", "10", "0/min", "10/0min", "10/fortnight"])
def test_a_bad_throttle_rate_stops_the_process_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv("THROTTLE_LOGIN_ACCOUNT", value)

    with pytest.raises(ImproperlyConfigured, match="THROTTLE_LOGIN_ACCOUNT"):
        env_rate("THROTTLE_LOGIN_ACCOUNT", "10/15min")
