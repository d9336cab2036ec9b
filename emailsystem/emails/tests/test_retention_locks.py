"""`prune` next to other transactions on real PostgreSQL: it never waits long for a row someone
else holds. A row another transaction has locked is skipped, and a batch that would wait for one
longer than LOCK_TIMEOUT_MS is rolled back; the next run takes them."""

import datetime
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from django.db import connections, transaction
from django.utils import timezone

from emailsystem.emails import retention
from emailsystem.emails.models import Delivery, DeliveryStatus, EmailStatus, IdempotencyRecord, OutboxMessage, SentEmail
from emailsystem.emails.retention import records_prune
from emailsystem.emails.tests.factories import sent_email

pytestmark = pytest.mark.django_db(transaction=True)

# Generous: how long the other transaction may take to start on a loaded machine.
READY_SECONDS = 30


@contextmanager
def held(lock: Callable[[], object]) -> Iterator[None]:
    """Run `lock` in a transaction of another connection and keep that transaction open inside the block."""
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                lock()
                locked.set()
                release.wait(READY_SECONDS)
        finally:
            connections.close_all()

    thread = threading.Thread(target=hold)
    thread.start()
    assert locked.wait(READY_SECONDS)
    try:
        yield
    finally:
        release.set()
        thread.join()


def old_settled_email(user) -> SentEmail:
    email = sent_email(user=user, recipients=["a@example.com"])
    Delivery.objects.filter(sent_email=email).update(status=DeliveryStatus.DELIVERED)
    old = timezone.now() - datetime.timedelta(days=100)
    SentEmail.objects.filter(pk=email.pk).update(status=EmailStatus.DELIVERED, created=old)
    OutboxMessage.objects.filter(sent_email=email).delete()
    return email


def sent_emails(results: list[retention.Pruned]) -> retention.Pruned:
    return next(pruned for pruned in results if pruned.kind == "sent emails")


def test_a_batch_that_meets_a_held_delivery_is_skipped_and_the_next_run_takes_it(user, monkeypatch):
    """As when SendGrid's events about an old email are being applied while prune runs."""
    monkeypatch.setattr(retention, "LOCK_TIMEOUT_MS", 200)
    email = old_settled_email(user)
    deliveries = Delivery.objects.filter(sent_email=email)

    with held(lambda: list(deliveries.select_for_update())):
        pruned = sent_emails(records_prune())

    assert (pruned.rows, pruned.skipped_batches) == (0, 1)
    assert SentEmail.objects.filter(pk=email.pk).exists()
    assert sent_emails(records_prune()).rows == 1
    assert not SentEmail.objects.filter(pk=email.pk).exists()


def test_a_row_another_transaction_holds_is_skipped_without_waiting(user, monkeypatch):
    # Far longer than the test: a wait for the lock would show as a timeout, not as a skip.
    monkeypatch.setattr(retention, "LOCK_TIMEOUT_MS", 60_000)
    old = timezone.now() - datetime.timedelta(days=2)
    held_record = IdempotencyRecord.objects.create(user=user, key="a", fingerprint="f", response={}, created=old)
    IdempotencyRecord.objects.create(user=user, key="b", fingerprint="f", response={}, created=old)

    with held(lambda: list(IdempotencyRecord.objects.select_for_update().filter(pk=held_record.pk))):
        results = records_prune()

    assert next(pruned for pruned in results if pruned.kind == "idempotency records").rows == 1
    assert list(IdempotencyRecord.objects.values_list("pk", flat=True)) == [held_record.pk]


def test_a_batch_commits_without_waiting_for_the_disk_and_leaves_the_session_as_it_was(monkeypatch):
    # A batch that a crash undoes is deleted by the next run: its commit need not wait for the WAL flush.
    user = sent_email().sender
    old = timezone.now() - datetime.timedelta(days=2)
    for n in range(3):
        IdempotencyRecord.objects.create(user=user, key=f"k{n}", fingerprint="f", response={}, created=old)
    seen: list[tuple[str, str]] = []
    delete = retention._delete

    def spy(candidates, ids):
        with connections["default"].cursor() as cursor:
            cursor.execute(
                "SELECT current_setting('synchronous_commit'), "
                "extract(epoch FROM current_setting('lock_timeout')::interval) * 1000"
            )
            seen.append(cursor.fetchone())
        return delete(candidates, ids)

    monkeypatch.setattr(retention, "_delete", spy)
    with connections["default"].cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        (before,) = cursor.fetchone()

    pruned = {item.kind: item for item in records_prune(batch_rows=2)}

    assert pruned["idempotency records"].rows == 3

    assert seen and {(commit, int(timeout)) for commit, timeout in seen} == {("off", retention.LOCK_TIMEOUT_MS)}
    with connections["default"].cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone() == (before,)
