"""The results process after a broker-side cancel (its queue deleted, its leader's node lost):
it connects again, declares the queue again and applies the results that come next."""

import json

import pika.exceptions
import pytest

from emailsender import topology
from emailsender.result_messages import build_result
from emailsender.testing.polling import wait_for
from emailsystem.emails.delivery.results_consumer import ResultsConsumer
from emailsystem.emails.models import Delivery, DeliveryStatus
from emailsystem.emails.tests.factories import sent_email
from emailsystem.emails.tests.loops import loop_running

pytestmark = [pytest.mark.rabbitmq, pytest.mark.django_db(transaction=True)]


def publish_sent(broker, email) -> None:
    body = build_result(
        email_id=email.pk,
        delivery_ids=list(Delivery.objects.filter(sent_email=email).values_list("pk", flat=True)),
        outcome="sent",
        attempt=1,
        status_code=202,
    )
    broker.channel.basic_publish(
        exchange=topology.exchange_name(broker.prefix),
        routing_key=topology.RESULT_KEY,
        body=json.dumps(body).encode(),
        mandatory=True,
    )


def queue_exists(broker, name: str) -> bool:
    channel = broker.connection.channel()  # a passive declare of a missing queue closes its channel
    try:
        channel.queue_declare(queue=name, passive=True)
    except pika.exceptions.ChannelClosedByBroker:
        return False
    channel.close()
    return True


def sent(email) -> bool:
    return set(Delivery.objects.filter(sent_email=email).values_list("status", flat=True)) == {DeliveryStatus.SENT}


def test_a_consumer_the_broker_cancels_connects_again_and_applies_later_results(broker, caplog):
    first, second = sent_email(recipients=["a@example.com"]), sent_email(recipients=["b@example.com"])
    with loop_running(lambda stop: ResultsConsumer(stop=stop).run()):
        publish_sent(broker, first)
        wait_for(lambda: sent(first), what="the first result applied")

        with caplog.at_level("WARNING", logger="emailsystem.emails.delivery.results_consumer"):
            broker.channel.queue_delete(topology.results_queue(broker.prefix))  # RabbitMQ cancels the consumer
            wait_for(
                lambda: any("consumer cancelled by the broker" in r.getMessage() for r in caplog.records),
                what="the cancel noticed",
            )
        # The new connection declared the queue again, so the result is routed and applied.
        wait_for(lambda: queue_exists(broker, topology.results_queue(broker.prefix)), what="the queue declared again")
        publish_sent(broker, second)
        wait_for(lambda: sent(second), what="the second result applied")
