"""Idempotency-Key replays and the daily quota, including under concurrent requests."""

import datetime

import pytest
from django.test import override_settings
from django.utils import timezone

from emailsystem.conftest import token_client
from emailsystem.core.tests.concurrency import run_concurrently
from emailsystem.emails.models import DailySendCount, IdempotencyRecord, SentEmail

URL = "/api/v1/emails/sent-email/"
pytestmark = pytest.mark.django_db
PAYLOAD = {"recipients": ["a@example.com", "b@example.com"], "subject": "s", "body": "b"}


def send(client, key=None, **payload):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(URL, payload or PAYLOAD, format="json", **headers)


def test_the_same_key_and_body_replays_the_first_answer(user_client):
    first = send(user_client, "order-1")
    again = send(user_client, "order-1")

    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert SentEmail.objects.count() == 1


def test_the_same_key_with_another_body_is_409(user_client):
    send(user_client, "order-1")

    response = send(user_client, "order-1", recipients=["z@example.com"], subject="s", body="b")

    assert response.status_code == 409
    assert "different request body" in response.json()["detail"]
    assert SentEmail.objects.count() == 1


def test_keys_belong_to_one_user(user_client, other_client):
    send(user_client, "shared")
    response = send(other_client, "shared")

    assert response.status_code == 202
    assert SentEmail.objects.count() == 2


def test_a_key_older_than_a_day_sends_again(user_client):
    send(user_client, "order-1")
    IdempotencyRecord.objects.update(created=timezone.now() - datetime.timedelta(hours=25))

    response = send(user_client, "order-1")

    assert response.status_code == 202
    assert SentEmail.objects.count() == 2


def test_without_a_key_every_post_sends(user_client):
    send(user_client)
    send(user_client)

    assert SentEmail.objects.count() == 2


def test_a_failed_send_does_not_burn_the_key(user_client):
    bad = send(user_client, "k", recipients=[], subject="s", body="b")
    good = send(user_client, "k")

    assert bad.status_code == 400 and good.status_code == 202
    assert SentEmail.objects.count() == 1


@override_settings(SEND_DAILY_QUOTA=3)
def test_the_daily_quota_counts_recipients_and_answers_429_with_retry_after(user_client):
    ok = send(user_client)  # 2 of 3
    over = send(user_client)  # 4 > 3

    assert ok.status_code == 202
    assert over.status_code == 429
    assert "Daily quota of 3" in over.json()["detail"]
    assert 0 < int(over.headers["Retry-After"]) <= 86400
    assert SentEmail.objects.count() == 1
    assert DailySendCount.objects.get().count == 2


@override_settings(SEND_DAILY_QUOTA=3)
def test_a_per_user_quota_overrides_the_default(user_client, user):
    user.daily_quota = 100
    user.save()

    assert [send(user_client).status_code for _ in range(3)] == [202, 202, 202]


@override_settings(SEND_DAILY_QUOTA=2)
def test_an_idempotent_replay_does_not_count_against_the_quota(user_client):
    assert send(user_client, "k").status_code == 202
    assert send(user_client, "k").status_code == 202
    assert DailySendCount.objects.get().count == 2


@pytest.mark.django_db(transaction=True)
@override_settings(SEND_DAILY_QUOTA=10)
def test_the_quota_holds_under_concurrent_sends(user):
    # 12 parallel sends of 2 recipients against a quota of 10: exactly 5 may pass.
    statuses = run_concurrently(12, lambda _: send(token_client(user)).status_code)

    assert sorted(statuses) == [202] * 5 + [429] * 7
    assert SentEmail.objects.count() == 5
    assert DailySendCount.objects.get().count == 10


@pytest.mark.django_db(transaction=True)
def test_concurrent_repeats_of_one_key_send_once(user):
    responses = run_concurrently(8, lambda _: send(token_client(user), "race"))

    assert {response.status_code for response in responses} == {202}
    assert len({response.json()["id"] for response in responses}) == 1
    assert SentEmail.objects.count() == 1
