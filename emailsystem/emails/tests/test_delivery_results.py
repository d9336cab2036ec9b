"""Applying the sender's results: idempotent, never backwards, and the email's status derived."""

import datetime

import pytest

from emailsender.result_messages import ResultMessage
from emailsystem.core.exceptions import ApplicationError
from emailsystem.emails.delivery.requeue import deliveries_requeue
from emailsystem.emails.delivery.results import delivery_results_apply, sent_email_status_derive
from emailsystem.emails.models import DeliveryStatus, EmailStatus, OutboxMessage, Suppression, SuppressionReason
from emailsystem.emails.tests.factories import sent_email

pytestmark = pytest.mark.django_db
AT = datetime.datetime(2026, 11, 22, 10, 0, tzinfo=datetime.UTC)


def result(email, outcome, deliveries=None, attempt=1, reason=""):
    ids = tuple(d.pk for d in email.deliveries.all()) if deliveries is None else tuple(d.pk for d in deliveries)
    return ResultMessage(
        email_id=email.pk, deliveries=ids, outcome=outcome, attempt=attempt, reason=reason, status_code=None, at=AT
    )


def statuses(email):
    email.refresh_from_db()
    return email.status, [(d.status, d.attempts, d.reason) for d in email.deliveries.order_by("pk")]


@pytest.fixture
def email():
    return sent_email(recipients=["a@example.com", "b@example.com"])


def test_sent_marks_every_recipient_and_the_email(email):
    changed = delivery_results_apply(results=[result(email, "sent", attempt=2)])

    assert changed == 2
    assert statuses(email) == (EmailStatus.SENT, [(DeliveryStatus.SENT, 2, "")] * 2)
    assert {d.sent_at for d in email.deliveries.all()} == {AT}


def test_applying_the_same_result_twice_changes_nothing(email):
    delivery_results_apply(results=[result(email, "sent")])
    before = statuses(email)
    updated = email.deliveries.get(recipient__email="a@example.com").updated

    assert delivery_results_apply(results=[result(email, "sent")]) == 0
    assert statuses(email) == before
    assert email.deliveries.get(recipient__email="a@example.com").updated == updated


def test_a_late_failure_never_overwrites_a_send(email):
    delivery_results_apply(results=[result(email, "sent")])

    delivery_results_apply(
        results=[result(email, "failed", reason="SendGrid 500"), result(email, "retrying", attempt=4)]
    )

    assert statuses(email) == (EmailStatus.SENT, [(DeliveryStatus.SENT, 1, "")] * 2)


def test_one_batch_applies_its_results_in_order_each_recipient_once(email):
    first, second = email.deliveries.order_by("pk")
    sandboxed = sent_email(recipients=["c@example.com"], sandbox=True)
    later = AT + datetime.timedelta(seconds=5)
    again = ResultMessage(
        email_id=email.pk, deliveries=(first.pk,), outcome="sent", attempt=3, reason="", status_code=202, at=later
    )

    changed = delivery_results_apply(
        results=[
            result(email, "sent", [first], attempt=2),
            again,  # a second copy's result, later in the same batch: the first stands
            result(email, "failed", [second], reason="SendGrid 400: bad address"),
            result(email, "sent", [second], attempt=2),  # after the failure in the batch: changes nothing
            result(sandboxed, "sent"),
        ]
    )

    assert changed == 3
    assert statuses(email) == (
        EmailStatus.PARTIAL,
        [(DeliveryStatus.SENT, 2, ""), (DeliveryStatus.FAILED, 1, "SendGrid 400: bad address")],
    )
    assert email.deliveries.get(pk=first.pk).sent_at == AT
    assert statuses(sandboxed) == (EmailStatus.SANDBOXED, [(DeliveryStatus.SANDBOXED, 1, "")])


def test_retrying_keeps_the_recipients_queued_with_the_last_error(email):
    delivery_results_apply(results=[result(email, "retrying", attempt=2, reason="SendGrid 503")])

    assert statuses(email) == (EmailStatus.QUEUED, [(DeliveryStatus.QUEUED, 2, "SendGrid 503")] * 2)


def test_some_sent_some_failed_is_partial_and_all_failed_is_failed(email):
    first, second = email.deliveries.order_by("pk")
    delivery_results_apply(results=[result(email, "sent", [first])])
    assert statuses(email)[0] == EmailStatus.QUEUED

    delivery_results_apply(results=[result(email, "failed", [second], reason="SendGrid 400: bad address")])
    assert statuses(email) == (
        EmailStatus.PARTIAL,
        [(DeliveryStatus.SENT, 1, ""), (DeliveryStatus.FAILED, 1, "SendGrid 400: bad address")],
    )

    other = sent_email(recipients=["c@example.com"])
    delivery_results_apply(results=[result(other, "failed", reason="SendGrid 401")])
    assert statuses(other)[0] == EmailStatus.FAILED


def test_a_result_naming_another_emails_deliveries_changes_nothing(email):
    other = sent_email(recipients=["c@example.com"])
    forged = ResultMessage(
        email_id=other.pk,
        deliveries=tuple(d.pk for d in email.deliveries.all()),
        outcome="failed",
        attempt=1,
        reason="x",
        status_code=400,
        at=AT,
    )

    assert delivery_results_apply(results=[forged]) == 0
    assert statuses(email)[0] == EmailStatus.QUEUED


@pytest.mark.parametrize(
    ("queued", "sent", "total", "expected"),
    [(1, 0, 1, "queued"), (1, 5, 9, "queued"), (0, 3, 3, "sent"), (0, 0, 3, "failed"), (0, 1, 3, "partial")],
)
def test_status_derivation(queued, sent, total, expected):
    assert sent_email_status_derive(queued=queued, sent=sent, total=total) == expected


def test_a_nul_in_a_failure_reason_is_dropped_not_a_database_error(email):
    delivery_results_apply(results=[result(email, "failed", attempt=1, reason="SendGrid 400: bad\u0000value")])

    assert statuses(email)[1][0] == (DeliveryStatus.FAILED, 1, "SendGrid 400: badvalue")


def test_requeue_puts_failed_recipients_back_and_enqueues_only_them(email):
    first, second = email.deliveries.order_by("pk")
    delivery_results_apply(
        results=[result(email, "sent", [first]), result(email, "failed", [second], attempt=5, reason="gave up")]
    )
    OutboxMessage.objects.all().delete()

    requeued = deliveries_requeue(delivery_ids=[first.pk, second.pk])

    assert requeued == 1
    assert statuses(email) == (EmailStatus.QUEUED, [(DeliveryStatus.SENT, 1, ""), (DeliveryStatus.QUEUED, 0, "")])
    assert list(OutboxMessage.objects.values_list("sent_email_id", "delivery_ids")) == [(email.pk, [second.pk])]


def test_requeue_skips_a_recipient_its_sender_has_since_suppressed(email):
    first, second = email.deliveries.order_by("pk")
    delivery_results_apply(results=[result(email, "failed", attempt=5, reason="gave up")])
    Suppression.objects.create(user=email.sender, recipient=second.recipient, reason=SuppressionReason.BOUNCE)
    OutboxMessage.objects.all().delete()

    assert deliveries_requeue(delivery_ids=[first.pk, second.pk]) == 1

    assert statuses(email)[1] == [(DeliveryStatus.QUEUED, 0, ""), (DeliveryStatus.FAILED, 5, "gave up")]
    assert list(OutboxMessage.objects.values_list("sent_email_id", "delivery_ids")) == [(email.pk, [first.pk])]
    with pytest.raises(ApplicationError):
        deliveries_requeue(delivery_ids=[second.pk])


def test_requeue_without_failures_is_refused(email):
    with pytest.raises(ApplicationError):
        deliveries_requeue(delivery_ids=[d.pk for d in email.deliveries.all()])


def test_the_log_filter_and_detail_show_delivery_outcomes(email, user_client, user):
    mine = sent_email(user=user, recipients=["a@example.com", "b@example.com"])
    first, second = mine.deliveries.order_by("pk")
    delivery_results_apply(
        results=[result(mine, "sent", [first]), result(mine, "failed", [second], reason="SendGrid 400: invalid")]
    )

    listed = user_client.get("/api/v1/emails/sent-email/", {"status": "partial"}).json()
    detail = user_client.get(f"/api/v1/emails/sent-email/{mine.pk}/").json()

    assert [item["id"] for item in listed["results"]] == [mine.pk]
    assert [(r["email"], r["status"], r["reason"]) for r in detail["recipients"]] == [
        ("a@example.com", "sent", ""),
        ("b@example.com", "failed", "SendGrid 400: invalid"),
    ]
    assert detail["recipients"][0]["sent_at"] == AT.isoformat().replace("+00:00", "Z")
