"""`sandbox: true`: validated, rendered, stored, handed to SendGrid in its sandbox mode; nothing delivered."""

import pytest

from emailsystem.emails.models import DailySendCount, Delivery, DeliveryStatus, EmailStatus, SentEmail
from emailsystem.emails.tests.delivering import deliver_queued

pytestmark = pytest.mark.django_db
URL = "/api/v1/emails/sent-email/"


def test_a_sandbox_send_reaches_sendgrid_in_sandbox_mode_and_its_recipients_end_sandboxed(
    user_client, template, fake, settings
):
    response = user_client.post(
        URL,
        {
            "recipients": ["a@example.com", "b@example.com"],
            "template": template.pk,
            "context": {"name": "Ada", "order": "42"},
            "sandbox": True,
        },
        format="json",
    )
    assert response.status_code == 202, response.json()

    deliver_queued(fake=fake, settings=settings)

    [request] = fake.requests
    assert request.body["mail_settings"] == {"sandbox_mode": {"enable": True}}
    assert request.status == 200  # SendGrid's sandbox answer
    assert fake.delivery_counts() == {}  # accepted, delivered to nobody
    assert "Ada" in request.body["content"][0]["value"]  # rendered like any send
    detail = user_client.get(f"{URL}{response.json()['id']}/").json()
    assert detail["status"] == EmailStatus.SANDBOXED
    assert [r["status"] for r in detail["recipients"]] == [DeliveryStatus.SANDBOXED] * 2
    assert all(r["sent_at"] for r in detail["recipients"])
    assert user_client.get(f"{URL}?status=sandboxed").json()["count"] == 1


def test_a_sandbox_send_does_not_count_against_the_daily_quota(user, user_client):
    user.daily_quota = 1
    user.save()
    body = {"recipients": ["a@example.com", "b@example.com"], "subject": "s", "body": "b"}

    assert user_client.post(URL, {**body, "sandbox": True}, format="json").status_code == 202
    assert not DailySendCount.objects.exists()
    assert user_client.post(URL, body, format="json").status_code == 429  # a real send still is counted


def test_in_embedded_mode_without_sendgrid_a_sandbox_send_writes_no_eml_file(user_client, settings, tmp_path):
    response = user_client.post(
        URL, {"recipients": ["a@example.com"], "subject": "s", "body": "b", "sandbox": True}, format="json"
    )

    assert deliver_queued(settings=settings, folder=tmp_path) == 1

    assert not list(tmp_path.rglob("*.eml"))
    assert SentEmail.objects.get(pk=response.json()["id"]).status == EmailStatus.SANDBOXED


def test_a_failed_sandbox_send_fails_like_any_other(user_client, fake, settings):
    fake.set_mode(status=400, count=1)
    user_client.post(
        URL, {"recipients": ["a@example.com"], "subject": "s", "body": "b", "sandbox": True}, format="json"
    )

    deliver_queued(fake=fake, settings=settings)

    assert Delivery.objects.get().status == DeliveryStatus.FAILED
    assert SentEmail.objects.get().status == EmailStatus.FAILED


def test_a_sandbox_value_that_is_not_a_boolean_is_a_400_and_nothing_is_written(user_client):
    response = user_client.post(
        URL, {"recipients": ["a@example.com"], "subject": "s", "body": "b", "sandbox": "perhaps"}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {"sandbox": ["Must be a valid boolean."]}
    assert not SentEmail.objects.exists()
