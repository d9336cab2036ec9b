"""`send_at` and cancel through the API: what a scheduled send records, bad input, who may cancel, and when."""

import datetime
import time

import pytest
from django.test import override_settings
from django.utils import timezone

from emailsystem.emails.delivery import embedded
from emailsystem.emails.models import (
    DailySendCount,
    Delivery,
    DeliveryStatus,
    EmailStatus,
    HistoryKind,
    OutboxMessage,
    SentEmail,
    SentEmailHistory,
)
from emailsystem.emails.tests.admin_pages import logged_in

URL = "/api/v1/emails/sent-email/"
pytestmark = pytest.mark.django_db


def in_seconds(seconds: float) -> datetime.datetime:
    return timezone.now() + datetime.timedelta(seconds=seconds)


def schedule(client, send_at, recipients=("a@example.com", "b@example.com")):
    payload = {"recipients": list(recipients), "subject": "Reminder", "body": "Tomorrow at 9", "send_at": send_at}
    return client.post(URL, payload, format="json")


def cancel(client, email_id):
    return client.post(f"{URL}{email_id}/cancel/", format="json")


def test_a_scheduled_send_is_recorded_scheduled_with_its_row_available_at_send_at(user_client, user):
    send_at = in_seconds(3600).replace(microsecond=0)

    response = schedule(user_client, send_at.isoformat())

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "scheduled"
    assert [r["status"] for r in body["recipients"]] == ["queued", "queued"]
    email = SentEmail.objects.get(pk=body["id"])
    assert (email.status, email.send_at) == (EmailStatus.SCHEDULED, send_at)
    [row] = OutboxMessage.objects.filter(sent_email=email)
    assert row.available_at == send_at
    # Charged at the request, on today's count.
    assert DailySendCount.objects.get(user=user).count == 2
    detail = user_client.get(f"{URL}{email.pk}/").json()
    assert (detail["status"], detail["send_at"]) == ("scheduled", send_at.isoformat().replace("+00:00", "Z"))


def test_an_offset_other_than_utc_means_that_moment(user_client):
    send_at = in_seconds(7200).replace(microsecond=0).astimezone(datetime.timezone(datetime.timedelta(hours=5)))

    response = schedule(user_client, send_at.isoformat())

    assert response.status_code == 202
    assert SentEmail.objects.get(pk=response.json()["id"]).send_at == send_at


@pytest.mark.parametrize(
    ("send_at", "message"),
    [
        ("2030-01-01T09:00:00", "offset"),
        ("2030-01-01", "offset"),
        ("tomorrow", "format"),
        (12, "format"),
        ("2001-01-01T09:00:00Z", "future"),
        ("0001-01-01T00:00:00+01:00", "range"),
    ],
)
def test_bad_send_at_is_a_400_naming_the_field_and_nothing_is_written(user_client, send_at, message):
    response = schedule(user_client, send_at)

    assert response.status_code == 400
    assert list(response.json()) == ["send_at"]
    assert not SentEmail.objects.exists() and not OutboxMessage.objects.exists()


@override_settings(SEND_AT_MAX_DAYS=2)
def test_send_at_past_the_limit_is_a_400(user_client):
    assert schedule(user_client, in_seconds(2 * 86400 - 60).isoformat()).status_code == 202

    response = schedule(user_client, in_seconds(2 * 86400 + 60).isoformat())

    assert response.status_code == 400
    assert response.json() == {"send_at": ["At most 2 days ahead."]}
    assert SentEmail.objects.count() == 1


def test_the_sender_cancels_a_scheduled_send_and_nothing_is_left_to_send(user_client):
    email_id = schedule(user_client, in_seconds(3600).isoformat()).json()["id"]

    response = cancel(user_client, email_id)

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "canceled"
    assert [r["status"] for r in body["recipients"]] == ["canceled", "canceled"]
    assert not OutboxMessage.objects.exists()
    assert SentEmailHistory.objects.filter(sent_email_id=email_id, kind=HistoryKind.CANCELED).count() == 1
    # Canceling again changes nothing.
    assert cancel(user_client, email_id).json()["status"] == "canceled"
    assert user_client.get(URL, {"status": "canceled"}).json()["count"] == 1
    assert user_client.get(URL, {"status": "scheduled"}).json()["count"] == 0


def test_someone_elses_email_is_a_404_and_stays_scheduled(user_client, other_client):
    email_id = schedule(user_client, in_seconds(3600).isoformat()).json()["id"]

    assert cancel(other_client, email_id).status_code == 404
    assert cancel(other_client, "nope").status_code == 404

    assert SentEmail.objects.get(pk=email_id).status == EmailStatus.SCHEDULED
    assert OutboxMessage.objects.filter(sent_email_id=email_id).exists()


def test_an_email_sent_now_cannot_be_canceled(user_client):
    email_id = user_client.post(URL, {"recipients": ["a@example.com"], "subject": "s", "body": "b"}, format="json")
    response = cancel(user_client, email_id.json()["id"])

    assert response.status_code == 409
    assert Delivery.objects.get().status == DeliveryStatus.QUEUED


def test_a_claimed_scheduled_send_is_a_409_and_keeps_its_recipients(user_client):
    email_id = schedule(user_client, in_seconds(3600).isoformat()).json()["id"]
    # What the relay's claim does to the row: its available_at moves to the end of a lease.
    OutboxMessage.objects.update(available_at=in_seconds(60))

    response = cancel(user_client, email_id)

    assert response.status_code == 409
    assert response.json() == {
        "detail": "This email has already been handed on for delivery.",
        "code": "already_handed_on",
    }
    assert SentEmail.objects.get(pk=email_id).status == EmailStatus.SCHEDULED
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.QUEUED}


@pytest.mark.django_db(transaction=True)
def test_embedded_mode_sends_nothing_before_send_at_and_everything_after(settings, user_client, fake):
    settings.SENDGRID_API_KEY = "SG.test-key"
    settings.SENDGRID_API_HOST = fake.url
    with override_settings(RABBITMQ_URL=""):
        worker = embedded.start_embedded_worker()
        try:
            later = schedule(user_client, in_seconds(2.5).isoformat()).json()["id"]
            now = {"recipients": ["c@example.com"], "subject": "s", "body": "b"}
            control = user_client.post(URL, now, format="json")
            # The worker is running: the send made now reaches SendGrid while the scheduled row is untouched.
            assert fake.wait_until(lambda f: any(control.json()["id"] in r.email_ids for r in f.requests))
            email = SentEmail.objects.get(pk=later)
            assert OutboxMessage.objects.get(sent_email_id=later).available_at == email.send_at
            assert fake.wait_until(lambda f: any(later in r.email_ids for r in f.requests), timeout=15)
            deadline = time.monotonic() + 10
            while SentEmail.objects.get(pk=later).status != EmailStatus.SENT:
                assert time.monotonic() < deadline, "the result was not applied"
                time.sleep(0.05)
        finally:
            worker.stop()
            embedded._worker = None

    [request] = [r for r in fake.requests if later in r.email_ids]
    assert request.at >= email.send_at.timestamp()


def test_the_admin_filters_and_shows_scheduled_and_canceled_emails(user_client, admin):
    scheduled = schedule(user_client, in_seconds(3600).isoformat()).json()["id"]
    canceled = schedule(user_client, in_seconds(3600).isoformat()).json()["id"]
    assert cancel(user_client, canceled).status_code == 200
    browser = logged_in(admin)

    by_status = {
        status: [
            email.pk for email in browser.get(f"/admin/emails/sentemail/?status={status}").context["cl"].result_list
        ]
        for status in ("scheduled", "canceled")
    }
    page = browser.get(f"/admin/emails/sentemail/{scheduled}/change/").content.decode()

    assert by_status == {"scheduled": [scheduled], "canceled": [canceled]}
    assert "Scheduled" in page and "Send at" in page


def test_the_browsable_form_sends_send_at_as_typed_with_its_offset(user, user_client):
    user_client.force_authenticate(user)
    form = user_client.get(URL, HTTP_ACCEPT="text/html").content.decode()
    send_at = in_seconds(3600).replace(microsecond=0).isoformat()

    response = user_client.post(
        URL, {"recipients": "a@example.com", "subject": "s", "body": "b", "send_at": send_at}, format="multipart"
    )

    [field] = [line.strip() for line in form.splitlines() if '<input name="send_at"' in line]
    assert 'type="text"' in field
    assert response.status_code == 202 and response.json()["status"] == "scheduled"
