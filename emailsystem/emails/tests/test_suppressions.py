"""The suppression list: sends skip suppressed addresses; users list and remove their own entries."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from emailsystem.emails.delivery.results import delivery_results_apply
from emailsystem.emails.delivery.work import work_message_for_outbox
from emailsystem.emails.models import (
    DailySendCount,
    Delivery,
    DeliveryStatus,
    EmailStatus,
    OutboxMessage,
    Recipient,
    SentEmail,
    Suppression,
    SuppressionReason,
)
from emailsystem.emails.tests.factories import sent_email
from emailsystem.emails.tests.test_delivery_results import result

pytestmark = pytest.mark.django_db
SEND_URL = "/api/v1/emails/sent-email/"
URL = "/api/v1/emails/suppressions/"


def suppress(user, address, reason=SuppressionReason.BOUNCE):
    recipient, _ = Recipient.objects.get_or_create(email=address)
    return Suppression.objects.create(user=user, recipient=recipient, reason=reason)


def send(client, recipients):
    response = client.post(SEND_URL, {"recipients": recipients, "subject": "s", "body": "b"}, format="json")
    assert response.status_code == 202, response.json()
    return response.json()


def test_a_suppressed_recipient_is_answered_suppressed_and_never_handed_to_the_sender(user, user_client):
    suppress(user, "gone@example.com")

    answer = send(user_client, ["ok@example.com", "gone@example.com"])

    assert answer["status"] == "queued"
    assert answer["recipients"] == [
        {"email": "ok@example.com", "status": "queued"},
        {"email": "gone@example.com", "status": "suppressed"},
    ]
    statuses = dict(Delivery.objects.values_list("recipient__email", "status"))
    assert statuses == {"ok@example.com": DeliveryStatus.QUEUED, "gone@example.com": DeliveryStatus.SUPPRESSED}
    [outbox] = OutboxMessage.objects.all()
    assert [d.to for d in work_message_for_outbox(outbox).deliveries] == ["ok@example.com"]
    assert DailySendCount.objects.get(user=user).count == 1, "suppressed recipients use no quota"


def test_a_send_to_suppressed_addresses_only_enqueues_nothing(user, user_client):
    suppress(user, "gone@example.com", SuppressionReason.UNSUBSCRIBE)

    answer = send(user_client, ["GONE@example.com"])

    assert answer["status"] == "suppressed"
    assert answer["recipients"] == [{"email": "gone@example.com", "status": "suppressed"}]
    assert not OutboxMessage.objects.exists()
    detail = user_client.get(f"{SEND_URL}{answer['id']}/").json()
    assert detail["status"] == "suppressed"
    assert detail["recipients"][0]["status"] == "suppressed"
    listed = user_client.get(SEND_URL, {"status": "suppressed"}).json()
    assert [item["id"] for item in listed["results"]] == [answer["id"]]


def test_another_users_suppression_does_not_apply(user, other_user, user_client):
    suppress(other_user, "gone@example.com")

    answer = send(user_client, ["gone@example.com"])

    assert answer["recipients"] == [{"email": "gone@example.com", "status": "queued"}]


def test_the_suppression_check_adds_no_query_to_a_send(user, user_client):
    send(user_client, [f"r{n}@example.com" for n in range(10)])  # the addresses exist from now on

    def queries_of_a_send():
        with CaptureQueriesContext(connection) as queries:
            send(user_client, [f"r{n}@example.com" for n in range(10)])
        return len(queries)

    without_entries = queries_of_a_send()
    suppress(user, "r3@example.com")
    with_entries = queries_of_a_send()

    assert with_entries == without_entries
    assert SentEmail.objects.order_by("-pk").first().deliveries.filter(status=DeliveryStatus.SUPPRESSED).count() == 1


def test_the_list_shows_only_my_entries_newest_first_and_paginated(user, other_user, user_client):
    email = sent_email(user=user, recipients=["a@example.com"])
    entry = suppress(user, "a@example.com", SuppressionReason.SPAM_REPORT)
    Suppression.objects.filter(pk=entry.pk).update(delivery=email.deliveries.get())
    newer = suppress(user, "b@example.com")
    suppress(other_user, "c@example.com")

    body = user_client.get(URL).json()

    assert body["count"] == 2 and body["next"] is None
    assert [(item["id"], item["email"], item["reason"]) for item in body["results"]] == [
        (newer.pk, "b@example.com", "bounce"),
        (entry.pk, "a@example.com", "spamreport"),
    ]
    assert body["results"][1]["email_id"] == email.pk
    assert body["results"][0]["email_id"] is None
    assert user_client.get(URL, {"page_size": 1}).json()["next"] is not None


def test_i_can_delete_my_entry_and_send_to_the_address_again(user, user_client):
    entry = suppress(user, "a@example.com")

    assert user_client.delete(f"{URL}{entry.pk}/").status_code == 204

    assert not Suppression.objects.exists()
    assert send(user_client, ["a@example.com"])["recipients"][0]["status"] == "queued"


def test_i_cannot_see_or_delete_someone_elses_entry(other_user, user_client, api_client):
    entry = suppress(other_user, "a@example.com")

    assert user_client.delete(f"{URL}{entry.pk}/").status_code == 404
    assert user_client.get(f"{URL}{entry.pk}/").status_code in (404, 405)
    assert api_client.get(URL).status_code == 401
    assert Suppression.objects.filter(pk=entry.pk).exists()


def test_entries_cannot_be_created_or_changed_through_the_api(user, user_client):
    entry = suppress(user, "a@example.com")

    assert user_client.post(URL, {"email": "x@example.com"}, format="json").status_code == 405
    assert user_client.patch(f"{URL}{entry.pk}/", {"reason": "bounce"}, format="json").status_code == 405


def test_admins_can_view_and_remove_entries(client, admin, user):
    entry = suppress(user, "a@example.com")
    client.force_login(admin)

    page = client.get("/admin/emails/suppression/")
    assert page.status_code == 200 and b"a@example.com" in page.content
    assert client.get(f"/admin/emails/suppression/{entry.pk}/change/").status_code == 200
    response = client.post(f"/admin/emails/suppression/{entry.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not Suppression.objects.exists()


def test_a_suppressed_recipient_makes_a_sent_email_partial_once_the_rest_is_sent(user, user_client):
    suppress(user, "gone@example.com")
    email = SentEmail.objects.get(pk=send(user_client, ["ok@example.com", "gone@example.com"])["id"])
    delivery_results_apply(results=[result(email, "sent", email.deliveries.filter(status=DeliveryStatus.QUEUED))])

    email.refresh_from_db()
    assert email.status == EmailStatus.PARTIAL
