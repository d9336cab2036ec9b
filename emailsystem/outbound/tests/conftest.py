"""Outbound webhook fixtures: the test's webhook queues on its broker prefix, deleted afterwards,
and the stack's processes with a short retry schedule and private targets allowed."""

import pika
import pytest

from emailsender.settings import QUORUM
from emailsystem.emails.tests.conftest import broker, fake, stack  # noqa: F401 (the delivery tests' fixtures)
from emailsystem.outbound import topology as webhook_topology
from emailsystem.outbound.publishing import webhook_publishers_close

# Short delays, so a test sees retries: one second each, three retries.
TEST_SCHEDULE = (1, 1, 1)
# OUTBOUND_WEBHOOKS_RETRY_SCHEDULE's default, which a process started without the setting declares.
DEFAULT_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)


@pytest.fixture
def webhook_broker(request, settings):
    """The `broker` fixture with the webhooks queues of TEST_SCHEDULE; they are deleted at the end
    with the default schedule's (which any process started without the setting would declare)."""
    connection = request.getfixturevalue("broker")
    settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE = True
    settings.OUTBOUND_WEBHOOKS_RETRY_SCHEDULE = TEST_SCHEDULE
    webhook_topology.declare_webhooks(connection.channel, connection.prefix, TEST_SCHEDULE, QUORUM)
    yield connection
    webhook_publishers_close()
    queues = set(webhook_topology.all_webhook_queues(connection.prefix, TEST_SCHEDULE))
    queues |= set(webhook_topology.all_webhook_queues(connection.prefix, DEFAULT_SCHEDULE))
    # A connection of its own: the test may have left the fixture's channel closed.
    cleanup = pika.BlockingConnection(pika.URLParameters(connection.url))
    try:
        for queue in sorted(queues):
            cleanup.channel().queue_delete(queue=queue)
    finally:
        cleanup.close()


@pytest.fixture
def webhook_stack(webhook_broker, request):
    """The pipeline stack whose processes run with TEST_SCHEDULE and private targets allowed."""
    running = request.getfixturevalue("stack")
    running.env["OUTBOUND_WEBHOOKS_ALLOW_PRIVATE"] = "1"
    running.env["OUTBOUND_WEBHOOKS_RETRY_SCHEDULE"] = ",".join(str(delay) for delay in TEST_SCHEDULE)
    return running
