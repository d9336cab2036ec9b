"""Delivery test fixtures: real RabbitMQ with a unique queue prefix per test, the fake SendGrid, the
Procfile's processes, the log lines."""

import io
import json
import logging

import pika
import pika.exceptions
import pytest

from emailsender import logs
from emailsender.testing.broker import RABBITMQ_TEST_URL, Broker
from emailsender.testing.fake_sendgrid import FakeSendGrid
from emailsystem.emails.delivery.broker import publishers_close
from emailsystem.emails.delivery.config import sender_settings
from emailsystem.emails.tests.pipeline import PipelineStack


@pytest.fixture
def broker(settings):
    """Broker mode for this test: RABBITMQ_URL set, its own exchange and queues, deleted afterwards."""
    connection = Broker(RABBITMQ_TEST_URL)
    settings.RABBITMQ_URL = RABBITMQ_TEST_URL
    settings.QUEUE_PREFIX = connection.prefix
    connection.declare(sender_settings())
    yield connection
    publishers_close()
    try:
        connection.close()
    except pika.exceptions.AMQPError:  # the test restarted the broker under our connection
        connection.connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_TEST_URL))
        connection.close()


@pytest.fixture
def fake():
    with FakeSendGrid() as server:
        yield server


@pytest.fixture
def stack(broker, fake, tmp_path):
    """The Procfile's processes for this test, started on demand (`stack.start("sender")`), on its
    database and broker prefix (emails/tests/pipeline.py); stopped at the end."""
    running = PipelineStack(broker, fake, tmp_path)
    yield running
    running.stop_all()


@pytest.fixture
def delivery_log():
    """The delivery code's log lines as the processes write them: a handler wired like settings.LOGGING's
    (JSON formatter, request-id and secret filters) on `emailsystem.emails.delivery`; call it for the parsed lines."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter_for("json"))
    handler.addFilter(logs.RequestIdFilter())
    handler.addFilter(logs.SecretMaskFilter())
    logger = logging.getLogger("emailsystem.emails.delivery")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)
    logger.setLevel(level)
