"""Sharing the senders among tenants through the whole pipeline: one user's bulk backlog is queued
first, another user's one-recipient send reaches SendGrid before that backlog drains
(docs/sender/fairness.md). API -> RabbitMQ -> sender process -> fake SendGrid -> results -> database."""

import pytest

from emailsender import topology
from emailsystem.emails.delivery.dispatcher import dispatcher
from emailsystem.emails.tests.pipeline import all_settled, send, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.rabbitmq, pytest.mark.slow]

BULK_SENDS = 12
BULK_RECIPIENTS = 100  # BULK_LANE_MIN_RECIPIENTS's default: each of these sends is bulk
BULK_WORKERS = 3


def test_a_small_send_reaches_sendgrid_before_another_users_bulk_backlog_drains(stack, user_client, other_client):
    stack.fake.set_mode(latency_ms=300)
    backlog = [
        send(user_client, [f"bulk{n}.{r}@example.com" for r in range(BULK_RECIPIENTS)], subject=f"Bulk {n}", body="b")
        for n in range(BULK_SENDS)
    ]
    small = send(other_client, ["reset@example.com"], subject="Password reset", body="Your link")
    assert dispatcher().flush(), "the dispatcher did not publish the sends"
    assert stack.broker.depth(topology.bulk_queue(stack.broker.prefix)) == BULK_SENDS
    assert stack.broker.depth(topology.work_queue(stack.broker.prefix)) == 1

    stack.start("sender", env=stack.sender_env(SENDER_CONCURRENCY="4", SENDER_BULK_CONCURRENCY=str(BULK_WORKERS)))
    stack.start("results")
    wait_until(lambda: all_settled([*backlog, small]), stack, timeout=60, what="every recipient settled")

    subjects = [request.body["subject"] for request in stack.fake.requests]
    assert sorted(subjects) == sorted(["Password reset", *(f"Bulk {n}" for n in range(BULK_SENDS))])
    # Queued last, sent among the first: at most the bulk calls started before it reached the
    # sender come before it (three workers' worth), the rest of the backlog after.
    assert subjects.index("Password reset") <= BULK_WORKERS
    assert subjects[-1].startswith("Bulk")
