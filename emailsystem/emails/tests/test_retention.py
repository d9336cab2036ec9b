"""`manage.py prune` (emails/retention.py): per kind of record, what goes, what stays, and batches
that stay small. Locks and concurrent sends: test_retention_locks.py, test_retention_under_load.py."""

import datetime
import io

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection
from django.db.models import ForeignKey
from django.utils import timezone

from emailsystem.emails import retention
from emailsystem.emails.management.commands import prune
from emailsystem.emails.models import (
    Attachment,
    DailySendCount,
    Delivery,
    DeliveryEvent,
    DeliveryStatus,
    EmailStatus,
    HistoryKind,
    IdempotencyRecord,
    OutboxMessage,
    Recipient,
    SentEmail,
    SentEmailHistory,
    SentEmailTag,
    Suppression,
    SuppressionReason,
)
from emailsystem.emails.retention import records_prune
from emailsystem.emails.tests.database_cuts import EndSessionAt
from emailsystem.emails.tests.factories import sent_email
from emailsystem.outbound.models import MessageState, WebhookAttempt, WebhookEndpoint, WebhookMessage
from emailsystem.outbound.services import endpoint_create
from emailsystem.users.models import AttemptCounter

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def ago(**delta: float) -> datetime.datetime:
    return NOW - datetime.timedelta(**delta)


def settled(email: SentEmail, *, days: float, status: str = DeliveryStatus.DELIVERED) -> SentEmail:
    """The email as it is once every recipient has moved on, accepted `days` ago."""
    Delivery.objects.filter(sent_email=email).update(status=status)
    SentEmail.objects.filter(pk=email.pk).update(status=EmailStatus.DELIVERED, created=ago(days=days))
    OutboxMessage.objects.filter(sent_email=email).delete()  # published
    return email


def event(delivery: Delivery, name: str = "open", *, received: datetime.datetime = NOW) -> DeliveryEvent:
    return DeliveryEvent.objects.create(
        sg_event_id=f"evt-{delivery.pk}-{name}-{received.timestamp()}",
        delivery=delivery,
        event=name,
        occurred_at=received,
        received_at=received,
    )


def by_kind(results: list[retention.Pruned]) -> dict[str, retention.Pruned]:
    return {pruned.kind: pruned for pruned in results}


# --- sent emails ---------------------------------------------------------------------------------


def test_an_old_email_goes_with_everything_recorded_under_it(user):
    email = settled(sent_email(user=user, recipients=["a@example.com", "b@example.com"]), days=91)
    first, second = Delivery.objects.filter(sent_email=email).order_by("pk")
    event(first, "delivered")
    event(second, "bounce")
    SentEmailHistory.objects.create(sent_email=email, kind=HistoryKind.PUBLISHED)
    SentEmailTag.objects.create(sent_email=email, tag="invoice")
    Attachment.objects.create(
        sent_email=email,
        position=0,
        filename="a.txt",
        type="text/plain",
        disposition="attachment",
        size=1,
        content=b"x",
    )
    suppression = Suppression.objects.create(
        user=user, recipient=second.recipient, reason=SuppressionReason.BOUNCE, delivery=second
    )

    pruned = by_kind(records_prune(now=NOW))["sent emails"]

    assert pruned.rows == 1
    assert {model: count for model, count in pruned.with_rows.items() if count} == {
        Delivery: 2,
        DeliveryEvent: 2,
        SentEmailHistory: 1,
        SentEmailTag: 1,
        Attachment: 1,
    }
    assert not SentEmail.objects.filter(pk=email.pk).exists()
    for model in (Delivery, SentEmailHistory, SentEmailTag, Attachment):
        assert not model.objects.filter(sent_email_id=email.pk).exists()
    assert not DeliveryEvent.objects.exists()
    # The user's suppression list is theirs to keep; it only forgets which delivery caused it.
    suppression.refresh_from_db()
    assert suppression.delivery is None
    # Addresses are shared by every email sent to them.
    assert Recipient.objects.filter(email__in=["a@example.com", "b@example.com"]).count() == 2


def test_an_email_younger_than_the_retention_stays(user):
    email = settled(sent_email(user=user), days=89)

    assert by_kind(records_prune(now=NOW))["sent emails"].rows == 0
    assert SentEmail.objects.filter(pk=email.pk).exists()


@pytest.mark.parametrize("email_status", [EmailStatus.QUEUED, EmailStatus.SCHEDULED])
def test_an_old_email_still_in_flight_stays(user, email_status):
    email = sent_email(user=user, recipients=["a@example.com"])
    SentEmail.objects.filter(pk=email.pk).update(status=email_status, created=ago(days=200))

    records_prune(now=NOW)

    assert SentEmail.objects.filter(pk=email.pk).exists()
    assert OutboxMessage.objects.filter(sent_email=email).exists()


def test_an_old_email_with_a_recipient_back_in_the_queue_stays(user):
    """An admin's requeue puts a failed recipient back: its email is in flight again, whatever its status says."""
    email = settled(sent_email(user=user, recipients=["a@example.com", "b@example.com"]), days=200)
    Delivery.objects.filter(sent_email=email, recipient__email="b@example.com").update(status=DeliveryStatus.QUEUED)

    records_prune(now=NOW)

    assert Delivery.objects.filter(sent_email=email).count() == 2


def test_a_retention_of_zero_keeps_emails_forever(user, settings):
    settings.RETENTION_SENT_EMAILS_DAYS = 0
    email = settled(sent_email(user=user), days=5000)

    pruned = by_kind(records_prune(now=NOW))["sent emails"]

    assert pruned.rule == "kept forever (RETENTION_SENT_EMAILS_DAYS=0)"
    assert SentEmail.objects.filter(pk=email.pk).exists()


def test_an_email_older_than_a_shorter_retention_goes(user, settings):
    settings.RETENTION_SENT_EMAILS_DAYS = 10
    email = settled(sent_email(user=user), days=11)

    records_prune(now=NOW)

    assert not SentEmail.objects.filter(pk=email.pk).exists()


# --- the other kinds -----------------------------------------------------------------------------


def test_delivery_events_older_than_their_retention_go_and_their_email_stays(user):
    email = settled(sent_email(user=user), days=30)
    delivery = Delivery.objects.get(sent_email=email)
    old, recent = event(delivery, "delivered", received=ago(days=91)), event(delivery, "open", received=ago(days=89))

    assert by_kind(records_prune(now=NOW))["delivery events"].rows == 1

    assert list(DeliveryEvent.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not DeliveryEvent.objects.filter(pk=old.pk).exists()
    assert Delivery.objects.filter(pk=delivery.pk).exists()


def test_idempotency_records_past_their_ttl_go(user, settings):
    settings.IDEMPOTENCY_KEY_TTL_HOURS = 24
    expired = IdempotencyRecord.objects.create(user=user, key="a", fingerprint="f", response={}, created=ago(hours=25))
    live = IdempotencyRecord.objects.create(user=user, key="b", fingerprint="f", response={}, created=ago(hours=23))

    assert by_kind(records_prune(now=NOW))["idempotency records"].rows == 1

    assert list(IdempotencyRecord.objects.values_list("pk", flat=True)) == [live.pk]
    assert expired.pk not in IdempotencyRecord.objects.values_list("pk", flat=True)


def test_daily_send_counts_older_than_their_retention_go(user, settings):
    settings.RETENTION_DAILY_COUNTS_DAYS = 90
    today = NOW.date()
    for days in (0, 90, 91, 400):
        DailySendCount.objects.create(user=user, day=today - datetime.timedelta(days=days), count=3)

    assert by_kind(records_prune(now=NOW))["daily send counts"].rows == 2

    assert sorted((today - day).days for day in DailySendCount.objects.values_list("day", flat=True)) == [0, 90]


def test_outbox_leftovers_go_and_pending_rows_stay(user):
    leftover = sent_email(user=user, recipients=["a@example.com"])
    Delivery.objects.filter(sent_email=leftover).update(status=DeliveryStatus.SENT)
    pending = sent_email(user=user, recipients=["b@example.com"])  # still queued: the relay will publish it
    recent = sent_email(user=user, recipients=["c@example.com"])
    Delivery.objects.filter(sent_email=recent).update(status=DeliveryStatus.SENT)
    OutboxMessage.objects.filter(sent_email__in=[leftover, pending]).update(created=ago(days=8))
    OutboxMessage.objects.filter(sent_email=recent).update(created=ago(days=6))

    assert by_kind(records_prune(now=NOW))["outbox leftovers"].rows == 1

    assert set(OutboxMessage.objects.values_list("sent_email_id", flat=True)) == {pending.pk, recent.pk}
    assert SentEmail.objects.filter(pk=leftover.pk).exists()  # only the row went


def test_settled_outbound_webhook_messages_older_than_the_events_retention_go_with_their_attempts(user):
    endpoint, _secret = endpoint_create(user=user, url="https://93.184.215.14/hook", events=["email.queued"])
    sent_email(user=user, recipients=["a@example.com", "b@example.com", "c@example.com", "d@example.com"])
    old_delivered, old_failed, old_pending, recent = WebhookMessage.objects.order_by("pk")
    WebhookMessage.objects.filter(pk=old_delivered.pk).update(state=MessageState.DELIVERED, created=ago(days=91))
    WebhookMessage.objects.filter(pk=old_failed.pk).update(state=MessageState.FAILED, created=ago(days=91))
    WebhookMessage.objects.filter(pk=old_pending.pk).update(created=ago(days=91))  # retries still to come
    WebhookMessage.objects.filter(pk=recent.pk).update(state=MessageState.DELIVERED, created=ago(days=89))
    WebhookAttempt.objects.create(message=old_delivered, endpoint=endpoint, attempt=1, status_code=200)

    assert by_kind(records_prune(now=NOW))["outbound webhook messages"].rows == 2

    assert set(WebhookMessage.objects.values_list("pk", flat=True)) == {old_pending.pk, recent.pk}
    assert not WebhookAttempt.objects.exists()
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()


def test_login_attempt_counters_whose_window_ended_go():
    AttemptCounter.objects.create(key="ip:ended", count=3, expires_at=ago(seconds=1))
    AttemptCounter.objects.create(key="ip:current", count=3, expires_at=NOW + datetime.timedelta(minutes=1))

    assert by_kind(records_prune(now=NOW))["login attempt counters"].rows == 1

    assert list(AttemptCounter.objects.values_list("key", flat=True)) == ["ip:current"]


def test_suppressions_and_recipients_are_never_pruned(user):
    recipient = Recipient.objects.create(email="gone@example.com")
    Recipient.objects.filter(pk=recipient.pk).update(created=ago(days=5000))
    Suppression.objects.create(
        user=user, recipient=recipient, reason=SuppressionReason.UNSUBSCRIBE, created=ago(days=5000)
    )

    records_prune(now=NOW)

    assert Suppression.objects.filter(recipient=recipient).exists()


def test_every_row_that_refers_to_an_email_or_a_delivery_is_handled():
    """sql.sent_emails_delete deletes (or unlinks) exactly these: a new model that refers to a sent
    email or a delivery must be added there, or its rows would block the delete."""
    referring = {
        model
        for model in apps.get_models()
        for field in model._meta.get_fields()
        if isinstance(field, ForeignKey) and field.remote_field.model in (SentEmail, Delivery)
    }

    assert referring == {
        Delivery,
        DeliveryEvent,
        SentEmailHistory,
        SentEmailTag,
        Attachment,
        OutboxMessage,
        Suppression,
    }


# --- batches -------------------------------------------------------------------------------------


def test_sent_email_batches_hold_at_most_the_batch_size_in_recipients(user, monkeypatch):
    batches = []
    delete = retention.sent_emails_delete

    def recording(*, email_ids):
        batches.append(sum(SentEmail.objects.filter(pk__in=email_ids).values_list("recipient_count", flat=True)))
        return delete(email_ids=email_ids)

    monkeypatch.setattr(retention, "sent_emails_delete", recording)
    for recipients in (1, 1, 3, 1, 2, 1):
        settled(sent_email(user=user, recipients=[f"r{n}@example.com" for n in range(recipients)]), days=100)

    assert by_kind(records_prune(now=NOW, batch_rows=2))["sent emails"].rows == 6

    # The email of 3 recipients goes alone: a batch holds at least one email.
    assert batches == [2, 3, 1, 2, 1]
    assert not SentEmail.objects.exists()


def test_batches_of_other_kinds_hold_at_most_the_batch_size(user, monkeypatch):
    batches = []
    delete = retention._delete

    def recording(candidates, ids):
        batches.append(len(ids))
        return delete(candidates, ids)

    monkeypatch.setattr(retention, "_delete", recording)
    for n in range(5):
        IdempotencyRecord.objects.create(user=user, key=f"k{n}", fingerprint="f", response={}, created=ago(days=2))

    assert by_kind(records_prune(now=NOW, batch_rows=2))["idempotency records"].rows == 5

    assert batches == [2, 2, 1]


# --- dry run and the command ---------------------------------------------------------------------


def test_a_dry_run_counts_and_deletes_nothing(user):
    email = settled(sent_email(user=user), days=100)
    IdempotencyRecord.objects.create(user=user, key="a", fingerprint="f", response={}, created=ago(days=2))

    counts = {pruned.kind: pruned.rows for pruned in records_prune(now=NOW, dry_run=True)}

    assert counts == {
        "outbox leftovers": 0,
        "delivery events": 0,
        "outbound webhook messages": 0,
        "sent emails": 1,
        "idempotency records": 1,
        "daily send counts": 0,
        "login attempt counters": 0,
    }
    assert SentEmail.objects.filter(pk=email.pk).exists()
    assert IdempotencyRecord.objects.count() == 1


def run_command(*args: str) -> list[str]:
    out = io.StringIO()
    call_command("prune", *args, stdout=out)
    return out.getvalue().splitlines()


def test_the_command_prints_what_it_deleted_per_kind(user, settings):
    settings.RETENTION_DAILY_COUNTS_DAYS = 0
    settled(sent_email(user=user, recipients=["a@example.com", "b@example.com"]), days=100)

    lines = run_command()

    assert lines == [
        "outbox leftovers: 0 deleted (written more than 7 days ago, nothing left to send)",
        "delivery events: 0 deleted (received more than 90 days ago)",
        "outbound webhook messages: 0 deleted (recorded more than 90 days ago and settled, with their attempts)",
        "sent emails: 1 deleted (accepted more than 90 days ago, none in flight), with 2 deliveries",
        "idempotency records: 0 deleted (written more than 24 hours ago, past IDEMPOTENCY_KEY_TTL_HOURS)",
        "daily send counts: 0 deleted (kept forever (RETENTION_DAILY_COUNTS_DAYS=0))",
        "login attempt counters: 0 deleted (windows ended)",
    ]
    assert not SentEmail.objects.exists()


def test_the_command_dry_run_prints_what_it_would_delete(user):
    email = settled(sent_email(user=user), days=100)

    lines = run_command("--dry-run")

    assert "sent emails: 1 to delete (accepted more than 90 days ago, none in flight)" in lines
    assert SentEmail.objects.filter(pk=email.pk).exists()


def test_the_command_prints_the_kinds_done_then_fails_on_a_database_error(monkeypatch):
    def broken(*, report, **kwargs):
        report(retention.Pruned(kind="outbox leftovers", rule="written more than 7 days ago", rows=2))
        raise DatabaseError("connection lost")

    monkeypatch.setattr(prune, "records_prune", broken)
    out = io.StringIO()

    with pytest.raises(CommandError, match="connection lost"):
        call_command("prune", stdout=out)
    assert out.getvalue() == "outbox leftovers: 2 deleted (written more than 7 days ago)\n"


@pytest.mark.django_db(transaction=True)
def test_the_command_starts_over_on_a_new_connection_when_the_database_cuts_it(monkeypatch):
    monkeypatch.setattr(prune, "RETRY_WAIT_SECONDS", 0)
    settled(sent_email(recipients=["a@example.com"]), days=100)
    cutter = EndSessionAt(lambda sql, seen: sql.startswith("DELETE"))
    out, err = io.StringIO(), io.StringIO()

    with connection.execute_wrapper(cutter):
        call_command("prune", stdout=out, stderr=err)

    assert cutter.ended
    assert "prune: database connection lost" in err.getvalue() and "starting over in 0 s" in err.getvalue()
    assert "sent emails: 1 deleted (accepted more than 90 days ago, none in flight)" in out.getvalue()
    assert not SentEmail.objects.exists()


@pytest.mark.parametrize("args", [["--batch-size", "0"], ["--pause-ratio", "-1"]])
def test_the_command_refuses_a_batch_size_below_one_or_a_negative_pause(args):
    with pytest.raises(CommandError):
        run_command(*args)
