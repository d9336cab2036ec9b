"""Publishing to RabbitMQ: after commit only, in confirmed batches, and relayed when the broker was away."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from emailsender import topology
from emailsender.logs import request_id_bound
from emailsender.messages import parse_work
from emailsender.testing.broker import RABBITMQ_TEST_URL
from emailsender.testing.tcp_proxy import TcpProxy
from emailsystem.emails.delivery import broker as broker_module
from emailsystem.emails.delivery import outbox as outbox_module
from emailsystem.emails.delivery.broker import publisher
from emailsystem.emails.delivery.dispatcher import dispatcher
from emailsystem.emails.delivery.outbox import outbox_relay
from emailsystem.emails.delivery.requeue import deliveries_requeue
from emailsystem.emails.models import Delivery, DeliveryStatus, OutboxMessage, SentEmail
from emailsystem.emails.tests.factories import sent_email

# Transactional: the dispatcher thread publishes and deletes outbox rows on its own connection,
# which only sees committed data.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.rabbitmq]
UNREACHABLE = "amqp://guest:guest@127.0.0.1:1/"
URL = "/api/v1/emails/sent-email/"


def dispatched():
    """Wait for this process's dispatcher to publish (or give up on) everything submitted."""
    assert dispatcher().flush(), "the dispatcher did not finish"


def work_messages(broker):
    dispatched()
    return [(properties, parse_work(body)) for properties, body in broker.take(topology.work_queue(broker.prefix))]


def test_a_committed_send_is_published_persistent_and_its_outbox_row_removed(
    broker, user_client, template, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = user_client.post(
            URL,
            {
                "recipients": ["a@example.com", "b@example.com"],
                "template": template.pk,
                "context": {"name": "Ada", "order": "42"},
            },
            format="json",
        )

    assert response.status_code == 202
    [(properties, message)] = work_messages(broker)
    email = SentEmail.objects.get()
    assert properties.delivery_mode == 2 and properties.message_id.startswith(f"email-{email.pk}.")
    assert message.email_id == email.pk
    assert message.subject == "Hello Ada"
    assert [(d.id, d.to) for d in message.deliveries] == list(
        Delivery.objects.order_by("pk").values_list("pk", "recipient__email")
    )
    assert not OutboxMessage.objects.exists()


def test_a_rolled_back_send_publishes_nothing(broker, django_capture_on_commit_callbacks):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        sent_email(recipients=["a@example.com"])
        raise RuntimeError("the request failed after the send was recorded")

    assert callbacks == []
    assert work_messages(broker) == []
    assert not SentEmail.objects.exists() and not OutboxMessage.objects.exists()


def test_with_the_broker_unreachable_the_send_is_accepted_and_waits_in_the_outbox(
    broker, settings, user_client, django_capture_on_commit_callbacks
):
    settings.RABBITMQ_URL = UNREACHABLE
    with django_capture_on_commit_callbacks(execute=True):
        response = user_client.post(URL, {"recipients": ["a@example.com"], "subject": "s", "body": "b"}, format="json")

    assert response.status_code == 202
    dispatched()
    assert SentEmail.objects.get().status == "queued"
    assert OutboxMessage.objects.count() == 1
    ready = user_client.get("/readyz")
    assert ready.status_code == 200, "a broker outage must not take the API out of service"
    assert ready.json()["checks"]["broker"].startswith("broker unreachable")


def test_the_relay_publishes_what_the_outage_left_once_the_broker_is_back(
    broker, settings, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(outbox_module, "RELAY_GRACE", outbox_module.RELAY_GRACE * 0)
    settings.RABBITMQ_URL = UNREACHABLE
    with django_capture_on_commit_callbacks(execute=True):
        first = sent_email(recipients=["a@example.com"])
        second = sent_email(recipients=["b@example.com", "c@example.com"])
    dispatched()
    assert outbox_relay() == 0, "still unreachable: nothing published, nothing lost"
    assert OutboxMessage.objects.count() == 2

    settings.RABBITMQ_URL = RABBITMQ_TEST_URL
    published = outbox_relay()

    assert published == 2
    assert sorted(message.email_id for _, message in work_messages(broker)) == [first.pk, second.pk]
    assert not OutboxMessage.objects.exists()


def test_the_publisher_reconnects_after_the_broker_drops_its_connection(
    broker, settings, monkeypatch, django_capture_on_commit_callbacks
):
    proxy = TcpProxy("127.0.0.1", 5672)
    settings.RABBITMQ_URL = RABBITMQ_TEST_URL.replace(":5672", f":{proxy.port}")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            sent_email(recipients=["a@example.com"])
        dispatched()
        proxy.cut()  # like a broker restart: the long-lived connection is gone
        with django_capture_on_commit_callbacks(execute=True):
            sent_email(recipients=["b@example.com"])
        dispatched()
    finally:
        publishers_close_and(proxy)

    assert len(work_messages(broker)) == 2
    assert not OutboxMessage.objects.exists()


def publishers_close_and(proxy):
    broker_module.publishers_close()
    proxy.close()


def test_an_unroutable_publish_is_not_dropped_but_published_again_after_redeclaring(broker):
    queue = topology.work_queue(broker.prefix)
    publisher().publish(b"first", message_id="m1")  # connects and declares the topology
    broker.take(queue)
    broker.channel.queue_delete(queue=queue)  # someone deleted the work queue by hand

    publisher().publish(b"second", message_id="m2")

    # Without mandatory publishing the broker would have dropped it silently.
    assert [body for _, body in broker.take(queue)] == [b"second"]


def test_requeue_in_broker_mode_publishes_only_the_failed_recipients(broker, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        email = sent_email(recipients=["a@example.com", "b@example.com"])
    work_messages(broker)
    failed = Delivery.objects.get(recipient__email="b@example.com")
    Delivery.objects.filter(pk=failed.pk).update(status=DeliveryStatus.FAILED, reason="SendGrid 400")

    with django_capture_on_commit_callbacks(execute=True):
        deliveries_requeue(delivery_ids=[failed.pk])

    [(_, message)] = work_messages(broker)
    assert message.email_id == email.pk
    assert [(d.id, d.to) for d in message.deliveries] == [(failed.pk, "b@example.com")]
    assert not OutboxMessage.objects.exists()


def test_a_publish_whose_outbox_row_survives_is_published_once_more_by_the_relay(
    broker, monkeypatch, django_capture_on_commit_callbacks
):
    # The documented duplicate window on the web side: the broker confirmed, then the
    # process died before deleting the row. Here every DELETE of the dispatcher's fails, as if
    # it had been SIGKILLed at that instant. The relay publishes it again: twice, never zero.
    from django.db import DatabaseError

    from emailsystem.emails.delivery import dispatcher as dispatcher_module

    def failing_delete(*, outbox_ids):
        raise DatabaseError("connection lost")

    monkeypatch.setattr(dispatcher_module, "outbox_delete", failing_delete)
    with django_capture_on_commit_callbacks(execute=True):
        email = sent_email(recipients=["a@example.com"])
    dispatched()
    OutboxMessage.objects.update(available_at=OutboxMessage.objects.get().created)  # the grace period has passed

    assert outbox_relay() == 1  # the relay deletes its row with the model's delete, not QuerySet.delete
    assert [message.email_id for _, message in work_messages(broker)] == [email.pk, email.pk]
    assert not OutboxMessage.objects.exists()


def test_the_api_request_id_travels_in_the_work_message_headers(broker, user_client):
    response = user_client.post(
        URL, {"recipients": ["a@example.com"], "subject": "s", "body": "b"}, format="json", HTTP_X_REQUEST_ID="req-1"
    )
    assert response.status_code == 202 and response["X-Request-ID"] == "req-1"
    [(properties, _message)] = work_messages(broker)
    assert properties.headers[topology.REQUEST_ID_HEADER] == "req-1"


def test_a_send_the_relay_publishes_carries_the_request_id_of_the_api_request(
    broker, settings, monkeypatch, user_client, delivery_log
):
    # The broker is down when the request is served: the dispatcher cannot publish, and the
    # relay publishes the row later, outside any request.
    monkeypatch.setattr(outbox_module, "RELAY_GRACE", outbox_module.RELAY_GRACE * 0)
    settings.RABBITMQ_URL = UNREACHABLE
    response = user_client.post(
        URL, {"recipients": ["a@example.com"], "subject": "s", "body": "b"}, format="json", HTTP_X_REQUEST_ID="req-7"
    )
    assert response.status_code == 202
    dispatched()
    assert OutboxMessage.objects.get().request_id == "req-7"

    settings.RABBITMQ_URL = RABBITMQ_TEST_URL
    assert outbox_relay() == 1

    [(properties, message)] = work_messages(broker)
    assert message.email_id == response.json()["id"]
    assert properties.headers[topology.REQUEST_ID_HEADER] == "req-7"
    [relayed] = [line for line in delivery_log() if line["msg"].startswith("relayed ")]
    assert relayed["request_id"] == "req-7"
    assert (relayed["message_id"], relayed["email_id"]) == (properties.message_id, message.email_id)
    assert not OutboxMessage.objects.exists()


def test_a_row_written_outside_a_request_is_relayed_without_a_request_id(broker, settings, monkeypatch, delivery_log):
    monkeypatch.setattr(outbox_module, "RELAY_GRACE", outbox_module.RELAY_GRACE * 0)
    settings.RABBITMQ_URL = UNREACHABLE
    email = sent_email(recipients=["a@example.com"])  # a service call with no request around it
    dispatched()
    assert OutboxMessage.objects.get().request_id is None

    settings.RABBITMQ_URL = RABBITMQ_TEST_URL
    assert outbox_relay() == 1

    [(properties, message)] = work_messages(broker)
    assert message.email_id == email.pk
    assert topology.REQUEST_ID_HEADER not in (properties.headers or {})
    [relayed] = [line for line in delivery_log() if line["msg"].startswith("relayed ")]
    assert "request_id" not in relayed


def test_an_admin_requeue_is_published_with_the_admins_request_id(broker, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        sent_email(recipients=["a@example.com"])
    work_messages(broker)
    failed = Delivery.objects.get()
    Delivery.objects.filter(pk=failed.pk).update(status=DeliveryStatus.FAILED, reason="SendGrid 400")

    # What ObservabilityMiddleware does around the admin's request.
    with request_id_bound("admin-req-1"), django_capture_on_commit_callbacks(execute=True):
        deliveries_requeue(delivery_ids=[failed.pk])

    [(properties, message)] = work_messages(broker)
    assert [d.id for d in message.deliveries] == [failed.pk]
    assert properties.headers[topology.REQUEST_ID_HEADER] == "admin-req-1"


def test_the_request_id_is_stored_by_the_sends_own_outbox_insert_with_no_extra_statement(broker, user_client):
    table = OutboxMessage._meta.db_table
    with CaptureQueriesContext(connection) as queries:
        response = user_client.post(
            URL,
            {"recipients": ["a@example.com"], "subject": "s", "body": "b"},
            format="json",
            HTTP_X_REQUEST_ID="req-8",
        )
    assert response.status_code == 202
    [statement] = [query["sql"] for query in queries if table in query["sql"]]
    assert statement.startswith(f'INSERT INTO "{table}"') and '"request_id"' in statement
    assert "'req-8'" in statement
    dispatched()


def test_a_published_row_whose_delete_failed_is_deleted_when_the_database_answers_again(
    broker, monkeypatch, django_capture_on_commit_callbacks
):
    # The database went away between the broker's confirm and the delete (make chaos,
    # database_down): the dispatcher retries the delete, so the relay has nothing to send again.
    import time

    from django.db import OperationalError

    from emailsystem.emails.delivery import dispatcher as dispatcher_module

    original_delete = dispatcher_module.outbox_delete
    refused = []

    def delete_refused_once(*, outbox_ids):
        if not refused:
            refused.append(outbox_ids)
            raise OperationalError("the database system is shutting down")
        return original_delete(outbox_ids=outbox_ids)

    monkeypatch.setattr(dispatcher_module, "outbox_delete", delete_refused_once)
    with django_capture_on_commit_callbacks(execute=True):
        email = sent_email(recipients=["a@example.com"])
    dispatched()
    deadline = time.monotonic() + 5
    while OutboxMessage.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.1)

    assert refused, "the first delete should have been refused"
    assert not OutboxMessage.objects.exists()
    assert outbox_relay() == 0
    assert [message.email_id for _, message in work_messages(broker)] == [email.pk]
