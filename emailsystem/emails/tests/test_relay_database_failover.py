"""The relay when the database goes away in the middle of a pass (a primary's death, a restart).

The database's failure is real: the server ends the relay's session (pg_terminate_backend, from
another connection) right after the pass has claimed its rows, as a dying primary would.
"""

import time

import pytest
from django.db import DatabaseError, connection

from emailsystem.emails.delivery import outbox as outbox_module
from emailsystem.emails.delivery.outbox import (
    CLAIM_LEASE,
    RelayInterrupted,
    outbox_available,
    outbox_hand_back,
    outbox_relay,
)
from emailsystem.emails.models import OutboxMessage
from emailsystem.emails.tests.database_cuts import EndSessionAt
from emailsystem.emails.tests.factories import sent_email

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.rabbitmq]
UNREACHABLE = "amqp://guest:guest@127.0.0.1:1/"


def after_the_claim(sql: str, seen: list[str]) -> bool:
    """The first statement after the claim's UPDATE of available_at."""
    return any(earlier.startswith("UPDATE") and "available_at" in earlier for earlier in seen)


def rows_left_by_an_outage(settings, monkeypatch):
    """Two sends whose publish failed (the broker unreachable): their outbox rows are the relay's."""
    monkeypatch.setattr(outbox_module, "RELAY_GRACE", outbox_module.RELAY_GRACE * 0)
    reachable = settings.RABBITMQ_URL
    settings.RABBITMQ_URL = UNREACHABLE
    emails = [sent_email(recipients=["a@example.com"]), sent_email(recipients=["b@example.com"])]
    settings.RABBITMQ_URL = reachable
    return emails


def test_rows_claimed_by_a_pass_the_database_cut_off_are_relayed_once_it_answers_again(broker, settings, monkeypatch):
    rows_left_by_an_outage(settings, monkeypatch)
    ids = sorted(OutboxMessage.objects.values_list("pk", flat=True))
    assert outbox_available(limit=10) == ids

    claimed_at = time.monotonic()
    cutter = EndSessionAt(after_the_claim)
    with connection.execute_wrapper(cutter), pytest.raises(RelayInterrupted) as cut:
        outbox_relay()
    connection.close()  # what the relay loop's close_old_connections does with an unusable connection

    assert cutter.ended and isinstance(cut.value, DatabaseError)
    assert (sorted(cut.value.unpublished), cut.value.published) == (ids, [])
    assert outbox_available(limit=10) == [], "still claimed: without a hand-back they wait for CLAIM_LEASE"

    outbox_hand_back(interrupted=cut.value, claimed_at=claimed_at - CLAIM_LEASE.total_seconds())
    assert outbox_available(limit=10) == [], "past the lease they may be another claimer's: not released"

    outbox_hand_back(interrupted=cut.value, claimed_at=claimed_at)
    assert outbox_available(limit=10) == ids
    assert outbox_relay() == 2
    assert not OutboxMessage.objects.exists()
