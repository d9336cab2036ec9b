"""The log after SendGrid's events: each recipient's history on the detail, and the new statuses as filters."""

import pytest

from emailsystem.emails.delivery.results import delivery_results_apply
from emailsystem.emails.delivery.statuses import RANK, REACHED, UNREACHED
from emailsystem.emails.models import DeliveryStatus
from emailsystem.emails.serializers import SentEmailListSerializer
from emailsystem.emails.tests.factories import sent_email
from emailsystem.emails.tests.test_delivery_results import result
from emailsystem.emails.tests.test_webhook import event, post, signer, webhook_key  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db
URL = "/api/v1/emails/sent-email/"


@pytest.fixture
def emails(user):
    opened = sent_email(user=user, recipients=["a@example.com", "b@example.com"])
    bounced = sent_email(user=user, recipients=["c@example.com"])
    untouched = sent_email(user=user, recipients=["d@example.com"])
    delivery_results_apply(results=[result(email, "sent") for email in (opened, bounced, untouched)])
    return {"opened": opened, "bounced": bounced, "untouched": untouched}


@pytest.fixture
def events_posted(client, signer, emails):  # noqa: F811
    a, b = emails["opened"].deliveries.select_related("recipient").order_by("pk")
    c = emails["bounced"].deliveries.select_related("recipient").get()
    events = [
        event(a, "processed"),
        event(a, "open", at=9, useragent="Mozilla"),
        event(a, "delivered", at=5),
        event(b, "delivered", at=4),
        event(c, "bounce", at=3, type="bounce", reason="550 5.1.1 unknown user"),
    ]
    assert post(client, signer, events).status_code == 200


def test_the_detail_shows_each_recipients_events_oldest_first(user_client, emails, events_posted):
    detail = user_client.get(f"{URL}{emails['opened'].pk}/").json()

    assert detail["status"] == "delivered"
    first, second = detail["recipients"]
    assert (first["status"], first["delivered_at"]) == ("opened", "2026-11-18T11:06:45Z")
    assert [(item["event"], item["occurred_at"]) for item in first["events"]] == [
        ("processed", "2026-11-18T11:06:40Z"),
        ("delivered", "2026-11-18T11:06:45Z"),
        ("open", "2026-11-18T11:06:49Z"),
    ]
    assert [item["event"] for item in second["events"]] == ["delivered"]
    bounce = user_client.get(f"{URL}{emails['bounced'].pk}/").json()
    assert bounce["status"] == "failed"
    assert bounce["recipients"][0]["reason"] == "550 5.1.1 unknown user"
    assert bounce["recipients"][0]["events"] == [
        {"event": "bounce", "occurred_at": "2026-11-18T11:06:43Z", "detail": "550 5.1.1 unknown user"}
    ]


def test_the_list_shows_the_new_statuses_without_the_history(user_client, emails, events_posted):
    results = user_client.get(URL).json()["results"]
    by_id = {item["id"]: item for item in results}

    opened = by_id[emails["opened"].pk]
    assert [r["status"] for r in opened["recipients"]] == ["opened", "delivered"]
    assert "events" not in opened["recipients"][0]
    assert list(opened) == SentEmailListSerializer.Meta.fields


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("delivered", ["opened"]),  # the email's own status
        ("failed", ["bounced"]),
        ("sent", ["untouched"]),
        ("opened", ["opened"]),  # a recipient status: emails with such a recipient
        ("bounced", ["bounced"]),
        ("clicked", []),
    ],
)
def test_the_status_filter_takes_email_and_recipient_statuses(user_client, emails, events_posted, status, expected):
    results = user_client.get(URL, {"status": status}).json()["results"]

    assert [item["id"] for item in results] == [emails[name].pk for name in expected]


def test_an_unknown_status_is_a_400_listing_the_choices(user_client):
    response = user_client.get(URL, {"status": "vanished"})

    assert response.status_code == 400
    assert "status" in response.json()


def test_every_recipient_status_has_a_rank_and_an_email_outcome():
    assert set(RANK) == set(DeliveryStatus.values)
    assert set(DeliveryStatus.values) - {DeliveryStatus.QUEUED} == REACHED | UNREACHED
    assert not REACHED & UNREACHED
