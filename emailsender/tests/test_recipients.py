"""One recipient whose address the sender cannot use fails alone; the others are still sent.

Through handle() and routing.plan(), as the consumer runs them, with a recording client.
"""

from __future__ import annotations

import json
import random
from dataclasses import replace

from emailsender import routing
from emailsender.clients import Response
from emailsender.handler import handle
from emailsender.messages import WorkRecipient, encode_work
from emailsender.outcomes import OutcomeKind
from emailsender.settings import Settings
from emailsender.tests.support import work_message

SETTINGS = Settings(max_attempts=5, retry_base_seconds=2, retry_max_seconds=600)
QUOTED_WITH_SPACE = '"a\\ b"@example.com'


class Recording:
    def __init__(self, status: int = 202) -> None:
        self.status = status
        self.payloads: list[dict] = []

    def send(self, payload: dict) -> Response:
        self.payloads.append(payload)
        return Response(self.status)


def results(outcome, body: bytes) -> list[dict]:
    publishes = routing.plan(outcome, body=body, headers={}, message_id="m-1", settings=SETTINGS)
    return [json.loads(p.body) for p in publishes if p.purpose == "result"]


def test_a_recipient_with_an_unusable_address_fails_alone_and_the_others_are_sent():
    message = work_message(deliveries=3)
    good_1, bad, good_2 = message.deliveries
    message = replace(message, deliveries=(good_1, WorkRecipient(id=bad.id, to=QUOTED_WITH_SPACE), good_2))
    body = encode_work(message)
    client = Recording()

    outcome = handle(body, 0, client, SETTINGS, rng=random.Random(1))

    assert outcome.kind is OutcomeKind.SENT
    assert [p["to"] for p in client.payloads[0]["personalizations"]] == [
        [{"email": good_1.to}],
        [{"email": good_2.to}],
    ]
    sent, failed = results(outcome, body)
    assert (sent["outcome"], sent["deliveries"]) == ("sent", [good_1.id, good_2.id])
    assert (failed["outcome"], failed["deliveries"]) == ("failed", [bad.id])
    assert failed["reason"] == "unusable address: Enter a valid email address."


def test_when_no_address_can_be_used_nothing_is_sent_and_each_recipient_fails():
    message = work_message(deliveries=2)
    first, second = message.deliveries
    message = replace(
        message,
        deliveries=(WorkRecipient(id=first.id, to=QUOTED_WITH_SPACE), WorkRecipient(id=second.id, to="x\u0001@a.b")),
    )
    body = encode_work(message)
    client = Recording()

    outcome = handle(body, 0, client, SETTINGS)

    assert outcome.kind is OutcomeKind.FAILED and client.payloads == []
    assert [(r["outcome"], r["deliveries"]) for r in results(outcome, body)] == [("failed", [first.id, second.id])]


def test_a_retry_sends_the_usable_recipients_again_without_reporting_the_rejected_again():
    message = work_message(deliveries=2)
    good, bad = message.deliveries
    body = encode_work(replace(message, deliveries=(good, WorkRecipient(id=bad.id, to=QUOTED_WITH_SPACE))))
    client = Recording(status=503)

    outcome = handle(body, 1, client, SETTINGS, rng=random.Random(1))

    assert outcome.kind is OutcomeKind.RETRY
    assert [(r["outcome"], r["deliveries"]) for r in results(outcome, body)] == [("retrying", [good.id])]
