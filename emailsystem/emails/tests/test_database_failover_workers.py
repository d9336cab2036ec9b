"""The relay and the results process when the database goes away under them (a primary's death,
a restart).

The database's failure is real: the server ends the process's session (pg_terminate_backend,
from another connection, database_cuts.py) at a chosen statement, as a dying primary would.
"""

import threading
import time

import pytest
from django.db import DatabaseError, connection, connections

from emailsender import topology
from emailsender.result_messages import build_result, encode_result
from emailsender.testing.polling import wait_for
from emailsystem.emails.delivery import outbox as outbox_module
from emailsystem.emails.delivery import results_consumer
from emailsystem.emails.delivery.dispatcher import dispatcher
from emailsystem.emails.delivery.outbox import (
    CLAIM_LEASE,
    RelayInterrupted,
    outbox_available,
    outbox_hand_back,
    outbox_relay,
)
from emailsystem.emails.delivery.results_consumer import ResultsConsumer
from emailsystem.emails.models import Delivery, DeliveryStatus, OutboxMessage
from emailsystem.emails.tests.database_cuts import EndSessionAt
from emailsystem.emails.tests.factories import sent_email
from emailsystem.emails.tests.loops import loop_running

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
    # The dispatcher publishes on its own thread: it must have tried (and failed) before the URL is
    # reachable again, or it publishes a row while the test relays them.
    assert dispatcher().flush(), "the dispatcher did not finish"
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


def test_the_results_process_applies_a_batch_on_a_new_connection_after_the_database_cut_its_session(
    broker, monkeypatch
):
    email = sent_email(recipients=["a@example.com", "b@example.com"])
    delivery_ids = list(email.deliveries.values_list("pk", flat=True))
    body = encode_result(build_result(email_id=email.pk, delivery_ids=delivery_ids, outcome="sent", attempt=1))
    monkeypatch.setattr(results_consumer, "RECONNECT_MIN_SECONDS", 0.05)  # a short pause after the refusal
    # The first statement the consumer runs is its batch's: the server ends the session there.
    cutter = EndSessionAt(lambda sql, seen: True)

    def consume(stop: threading.Event) -> None:
        with connections["default"].execute_wrapper(cutter):  # this thread's connection
            ResultsConsumer(stop=stop).run()

    with loop_running(consume):
        broker.channel.basic_publish(
            exchange=topology.exchange_name(broker.prefix), routing_key=topology.RESULT_KEY, body=body
        )
        wait_for(
            lambda: (
                set(Delivery.objects.filter(pk__in=delivery_ids).values_list("status", flat=True))
                == {DeliveryStatus.SENT}
            ),
            what="the result applied once the consumer connected again",
        )

    assert cutter.ended
    assert broker.depth(topology.results_queue(broker.prefix)) == 0
    assert broker.depth(topology.dead_queue(broker.prefix)) == 0
