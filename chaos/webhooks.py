"""The webhooks_kill scenario: SIGKILL the webhooks process while it delivers outbound webhooks.

It needs Django, so run.py imports it after django.setup() and hands kill_webhooks to the
scenario through the context (faults.webhooks_kill).

A receiver on 127.0.0.1 answers every webhook at once; an endpoint of the load's user takes
email.queued and email.sent, so every accepted recipient makes two messages. The fault kills
the webhooks process once events flow and restarts it after RESTART_DELAY_SECONDS; the check
waits for every message recorded for the endpoint to arrive (by webhook-id) and counts repeats,
which at-least-once allows up to what the killed process could hold (its prefetch).
"""

import time
from typing import Any

from django.db import close_old_connections

from chaos.faults import EVENTS_BEFORE_KILL, RESTART_DELAY_SECONDS, Fault
from chaos.outcome import Outcome
from emailsystem.outbound.models import WebhookEndpoint, WebhookMessage
from emailsystem.outbound.services import endpoint_create
from emailsystem.outbound.tests.receiver import Receiver
from emailsystem.outbound.worker import PREFETCH
from emailsystem.users.models import User

# How long the check waits for the last events after the stack settled.
ARRIVAL_SECONDS = 60.0


def kill_webhooks(ctx: dict[str, Any]) -> Fault:
    """Endpoint and receiver up; SIGKILL the webhooks process once events arrive; restart it."""
    receiver = Receiver().__enter__()
    ctx["webhooks_receiver"] = receiver
    user = User.objects.get(email="chaos@example.com")
    endpoint, _secret = endpoint_create(user=user, url=receiver.url, events=["email.queued", "email.sent"])
    ctx["webhooks_endpoint"] = endpoint.pk
    receiver.wait_for(EVENTS_BEFORE_KILL, timeout=60)
    stack = ctx["stack"]
    victim = stack.running["webhooks"].pop(0)
    # No duplicate bound or crash time for SendGrid: the sends are untouched, so none may repeat.
    fault = Fault(began=time.time())
    victim.kill()
    time.sleep(RESTART_DELAY_SECONDS)
    stack.start("webhooks")
    fault.cleared = time.time()
    return fault


def check_webhooks(ctx: dict[str, Any], outcome: Outcome) -> None:
    """Every message recorded for the endpoint arrived; repeats within the bound. Stops the endpoint."""
    receiver: Receiver = ctx.pop("webhooks_receiver")
    endpoint_id = ctx.pop("webhooks_endpoint")
    close_old_connections()
    # The load has stopped and the stack settled: no message for the endpoint is still to be recorded.
    expected = set(WebhookMessage.objects.filter(endpoint_id=endpoint_id).values_list("webhook_id", flat=True))
    deadline = time.monotonic() + ARRIVAL_SECONDS
    while time.monotonic() < deadline and not expected <= {event[2] for event in receiver.events()}:
        time.sleep(0.2)
    arrived = [event[2] for event in receiver.events()]
    # Disabled only now: its messages still queued would be skipped, not delivered.
    WebhookEndpoint.objects.filter(pk=endpoint_id).update(enabled=False)
    receiver.__exit__(None, None, None)
    lost = expected - set(arrived)
    duplicated = len(arrived) - len(set(arrived))
    outcome.webhooks = {"recorded": len(expected), "arrived": len(set(arrived)), "repeats": duplicated}
    if lost:
        examples = sorted(lost)[:3]
        outcome.failures.append(f"{len(lost)} of {len(expected)} webhook events never arrived (e.g. {examples})")
    if duplicated > PREFETCH:
        outcome.failures.append(f"{duplicated} webhook repeats, more than the killed process could hold ({PREFETCH})")
