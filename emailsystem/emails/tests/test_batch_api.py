"""POST emails/batch/: many sends validated together, recorded in one transaction, each delivered."""

import datetime

import pytest
from django.test import override_settings
from django.utils import timezone

from emailsender.clients import SendGridClient
from emailsystem.emails.delivery.config import sender_settings
from emailsystem.emails.delivery.embedded import outbox_process
from emailsystem.emails.models import (
    DailySendCount,
    Delivery,
    IdempotencyRecord,
    OutboxMessage,
    Recipient,
    SentEmail,
    Suppression,
)
from emailsystem.emails.tests.factories import EmailTemplateFactory

URL = "/api/v1/emails/batch/"
SEND_URL = "/api/v1/emails/sent-email/"
pytestmark = pytest.mark.django_db


def nothing_written() -> bool:
    return not (
        SentEmail.objects.exists()
        or Delivery.objects.exists()
        or OutboxMessage.objects.exists()
        or IdempotencyRecord.objects.exists()
        or DailySendCount.objects.filter(count__gt=0).exists()
    )


def messages(template):
    return [
        {"recipients": ["a@example.com"], "template": template.pk, "context": {"name": "Ada", "order": "1"}},
        {"recipients": ["b@example.com", "c@example.com"], "subject": "Ad hoc", "body": "Plain"},
        {"recipients": ["d@example.com"], "template": template.pk, "context": {"name": "Dan", "order": "2"}},
    ]


def test_a_batch_answers_each_sends_202_body_in_order(user_client, template):
    response = user_client.post(URL, {"messages": messages(template)}, format="json")

    assert response.status_code == 202
    results = response.json()["results"]
    assert [[r["email"] for r in result["recipients"]] for result in results] == [
        ["a@example.com"],
        ["b@example.com", "c@example.com"],
        ["d@example.com"],
    ]
    single = user_client.post(SEND_URL, messages(template)[0], format="json").json()
    assert all(set(result) == set(single) for result in results)
    assert all(result["message"] == single["message"] and result["status"] == "queued" for result in results)
    emails = {email.pk: email for email in SentEmail.objects.filter(pk__in=[r["id"] for r in results])}
    assert [emails[r["id"]].subject for r in results] == ["Hello Ada", "Ad hoc", "Hello Dan"]
    assert [emails[r["id"]].body for r in results] == [
        "Hi Ada, your order 1 shipped.",
        "Plain",
        "Hi Dan, your order 2 shipped.",
    ]
    assert OutboxMessage.objects.filter(sent_email_id__in=emails).count() == 3
    assert Delivery.objects.filter(sent_email_id__in=emails).count() == 4


def test_one_invalid_message_refuses_the_batch_under_its_index_and_writes_nothing(user_client, template):
    batch = messages(template)
    batch[1]["recipients"] = ["b@example.com", "not an address"]
    batch[2] = "text"

    response = user_client.post(URL, {"messages": batch}, format="json")

    assert response.status_code == 400
    errors = response.json()["messages"]
    assert set(errors) == {"1", "2"}
    assert set(errors["1"]["recipients"]) == {"1"}
    assert nothing_written()


def test_a_message_missing_a_variable_refuses_the_batch_naming_it_and_writes_nothing(user_client, template):
    batch = messages(template)
    batch[2]["context"] = {"name": "Dan"}

    response = user_client.post(URL, {"messages": batch}, format="json")

    assert response.status_code == 400
    assert list(response.json()["messages"]) == ["2"]
    (message,) = response.json()["messages"]["2"]["context"]
    assert "order" in message
    assert nothing_written()


@override_settings(BATCH_MAX_MESSAGES=2)
@pytest.mark.parametrize("batch", [[], "x", None])
def test_a_batch_must_hold_a_list_of_one_to_the_maximum_messages(user_client, template, batch):
    over = user_client.post(URL, {"messages": messages(template)}, format="json")
    response = user_client.post(URL, {"messages": batch}, format="json")

    assert over.status_code == response.status_code == 400
    assert "At most 2 messages" in over.json()["messages"][0]
    assert "messages" in response.json()
    assert nothing_written()


def test_the_quota_counts_every_recipient_of_the_batch(user_client, user, template):
    user.daily_quota = 3
    user.save()

    refused = user_client.post(URL, {"messages": messages(template)}, format="json")
    accepted = user_client.post(URL, {"messages": messages(template)[:2]}, format="json")

    assert refused.status_code == 429
    assert accepted.status_code == 202
    assert DailySendCount.objects.get(user=user).count == 3
    assert SentEmail.objects.count() == 2


def test_an_idempotency_key_covers_the_batch(user_client, template):
    first = user_client.post(URL, {"messages": messages(template)}, format="json", HTTP_IDEMPOTENCY_KEY="b-1")
    again = user_client.post(URL, {"messages": messages(template)}, format="json", HTTP_IDEMPOTENCY_KEY="b-1")
    other = user_client.post(URL, {"messages": messages(template)[:1]}, format="json", HTTP_IDEMPOTENCY_KEY="b-1")

    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert other.status_code == 409
    assert SentEmail.objects.count() == 3


def test_a_suppressed_recipient_in_a_batch_is_answered_suppressed(user_client, user, template):
    user_client.post(SEND_URL, {"recipients": ["z@example.com"], "subject": "s", "body": "b"}, format="json")
    recipient = Recipient.objects.get(email="z@example.com")
    Suppression.objects.create(user=user, recipient=recipient)
    batch = [{"recipients": ["z@example.com"], "subject": "s", "body": "b"}, messages(template)[0]]

    results = user_client.post(URL, {"messages": batch}, format="json").json()["results"]

    assert [(r["status"], r["recipients"][0]["status"]) for r in results] == [
        ("suppressed", "suppressed"),
        ("queued", "queued"),
    ]


def test_every_message_of_a_batch_reaches_sendgrid_in_embedded_mode(user_client, fake, settings):
    settings.SENDGRID_API_KEY = "SG.test-key"
    settings.SENDGRID_API_HOST = fake.url
    template = EmailTemplateFactory(subject="Receipt {{ n }}", body="Total {{ n }}", html_body="")
    batch = [{"recipients": [f"r{n}@example.com"], "template": template.pk, "context": {"n": n}} for n in range(20)]

    response = user_client.post(URL, {"messages": batch}, format="json")
    assert response.status_code == 202
    config = sender_settings()
    client = SendGridClient(config.sendgrid_api_key, config.sendgrid_api_host, timeout=2)
    while outbox_process(client=client, config=config):
        pass

    received = {
        (request.body["personalizations"][0]["to"][0]["email"], request.body["subject"]) for request in fake.requests
    }
    assert received == {(f"r{n}@example.com", f"Receipt {n}") for n in range(20)}
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}


def test_batch_messages_carry_tags_metadata_and_sandbox_like_single_sends(user_client):
    batch = [
        {"recipients": ["a@example.com"], "subject": "s", "body": "b", "tags": ["receipt"], "metadata": {"k": "v"}},
        {"recipients": ["b@example.com"], "subject": "s", "body": "b", "sandbox": True},
    ]

    response = user_client.post(URL, {"messages": batch}, format="json")

    assert response.status_code == 202, response.json()
    first, second = (SentEmail.objects.get(pk=result["id"]) for result in response.json()["results"])
    assert (first.tags, first.metadata, first.sandbox) == (["receipt"], {"k": "v"}, False)
    assert second.sandbox is True
    assert DailySendCount.objects.get().count == 1, "the sandbox message is not charged"
    tagged = user_client.get(SEND_URL, {"tag": "receipt"}).json()
    assert [email["id"] for email in tagged["results"]] == [first.pk]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("send_at", (timezone.now() + datetime.timedelta(days=1)).isoformat()),
        ("attachments", [{"filename": "a.txt", "content": "aGk="}]),
    ],
)
def test_a_batch_message_with_a_field_batches_do_not_take_is_refused_by_index(user_client, field, value):
    batch = [
        {"recipients": ["a@example.com"], "subject": "s", "body": "b"},
        {"recipients": ["b@example.com"], "subject": "s", "body": "b", field: value},
    ]

    response = user_client.post(URL, {"messages": batch}, format="json")

    assert response.status_code == 400
    assert response.json()["messages"] == {
        "1": {field: ["Not taken in a batch message; send this message with POST sent-email/."]}
    }
    assert nothing_written()
