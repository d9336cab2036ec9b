"""handle(): payload building, classification, backoff and 429 parsing. No broker."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from emailsender.clients import Response, TransportError
from emailsender.delays import (
    RATE_LIMIT_DEFAULT_SECONDS,
    RATE_LIMIT_MAX_SECONDS,
    RATE_LIMIT_MIN_SECONDS,
    backoff_seconds,
    rate_limit_wait,
)
from emailsender.handler import build_payload, error_text, handle, unexpected_error
from emailsender.messages import encode_work
from emailsender.outcomes import OutcomeKind, result_for
from emailsender.settings import Settings
from emailsender.tests.support import work_message

NOW = 1_800_000_000.0
SETTINGS = Settings(max_attempts=5, retry_base_seconds=2, retry_max_seconds=600)


class ScriptedClient:
    """Answers with the given responses (or raises the given TransportErrors) in order."""

    def __init__(self, *answers: Response | TransportError) -> None:
        self.answers = list(answers)
        self.payloads: list[dict] = []

    def send(self, payload: dict) -> Response:
        self.payloads.append(payload)
        answer = self.answers.pop(0)
        if isinstance(answer, TransportError):
            raise answer
        return answer


def run(answer: Response | TransportError, attempt: int = 0, settings: Settings = SETTINGS, message=None):
    message = message or work_message(deliveries=2)
    client = ScriptedClient(answer)
    return handle(encode_work(message), attempt, client, settings, rng=random.Random(7), clock=lambda: NOW), message


def sendgrid_error(status: int, message: str, field: str | None = None) -> Response:
    body = json.dumps({"errors": [{"message": message, "field": field, "help": None}]}).encode()
    return Response(status, {"content-type": "application/json"}, body)


# -- payload -----------------------------------------------------------------------------------


def test_payload_has_one_personalization_per_delivery_with_our_ids():
    message = work_message(deliveries=3, reply_to="bob@example.com", html="<p>hi</p>")
    payload = build_payload(message)
    assert payload["personalizations"] == [
        {"to": [{"email": d.to}], "custom_args": {"delivery_id": str(d.id), "email_id": str(message.email_id)}}
        for d in message.deliveries
    ]
    assert payload["from"] == {"email": "alice@example.com"}
    assert payload["reply_to"] == {"email": "bob@example.com"}
    assert payload["subject"] == message.subject
    assert payload["content"] == [
        {"type": "text/plain", "value": "Hello there"},
        {"type": "text/html", "value": "<p>hi</p>"},
    ]


def test_payload_without_reply_to_or_html_or_text():
    assert "reply_to" not in build_payload(work_message())
    assert build_payload(work_message())["content"] == [{"type": "text/plain", "value": "Hello there"}]
    html_only = build_payload(work_message(text="", html="<p>x</p>"))
    assert html_only["content"] == [{"type": "text/html", "value": "<p>x</p>"}]


# -- classification ----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 202])
def test_2xx_is_sent(status):
    outcome, message = run(Response(status))
    assert outcome.kind is OutcomeKind.SENT
    assert (outcome.attempt, outcome.status_code, outcome.reason) == (1, status, "")
    assert (outcome.email_id, outcome.delivery_ids) == (message.email_id, message.delivery_ids)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_retries_while_attempts_remain(status):
    outcome, _ = run(sendgrid_error(status, "oops"), attempt=3)
    assert outcome.kind is OutcomeKind.RETRY
    assert outcome.attempt == 4
    assert outcome.status_code == status
    assert outcome.reason == f"SendGrid {status}: oops"
    nominal = 2 * 4**3
    assert nominal / 2 <= outcome.delay_seconds <= nominal


def test_5xx_on_the_last_attempt_fails_for_good():
    outcome, _ = run(sendgrid_error(500, "oops"), attempt=4)
    assert outcome.kind is OutcomeKind.FAILED
    assert outcome.attempt == 5
    assert outcome.reason == "SendGrid 500: oops (gave up after 5 attempts)"


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (TransportError("timeout", "no answer within 10s"), "SendGrid timeout: no answer within 10s"),
        (
            TransportError("connection", "[Errno 111] Connection refused"),
            "SendGrid connection: [Errno 111] Connection refused",
        ),
    ],
)
def test_transport_errors_retry(error, reason):
    outcome, _ = run(error)
    assert outcome.kind is OutcomeKind.RETRY
    assert (outcome.attempt, outcome.status_code, outcome.reason) == (1, None, reason)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413])
def test_other_4xx_fail_at_once(status):
    outcome, _ = run(
        sendgrid_error(status, "The from address does not match a verified Sender Identity.", "from"), attempt=0
    )
    assert outcome.kind is OutcomeKind.FAILED
    assert outcome.attempt == 1
    assert outcome.status_code == status
    assert outcome.reason == f"SendGrid {status}: The from address does not match a verified Sender Identity. (from)"


def test_a_single_attempt_setting_never_retries():
    outcome, _ = run(sendgrid_error(500, "oops"), settings=Settings(max_attempts=1))
    assert outcome.kind is OutcomeKind.FAILED


def test_429_waits_for_the_reset_and_keeps_the_attempt_count():
    outcome, _ = run(Response(429, {"x-ratelimit-reset": str(int(NOW + 7))}), attempt=2)
    assert outcome.kind is OutcomeKind.RATE_LIMITED
    assert outcome.attempt == 2  # unchanged: a 429 does not use up an attempt
    assert outcome.status_code == 429
    assert 7 <= outcome.delay_seconds <= 7.7


def test_poison_never_raises_and_keeps_readable_ids():
    client = ScriptedClient()
    for body in (b"", b"\x00\xff", b"[]", b'{"v": 2}', b"null", b'{"v": 1, "email_id": true}', b"9" * 5000):
        outcome = handle(body, 0, client, SETTINGS)
        assert outcome.kind is OutcomeKind.POISON
        assert outcome.reason.startswith("invalid message: ")
        assert outcome.email_id is None
    partly = {**work_message(deliveries=2).to_dict(), "from_email": "nobody"}
    outcome = handle(json.dumps(partly).encode(), 3, client, SETTINGS)
    assert outcome.kind is OutcomeKind.POISON
    assert outcome.attempt == 3
    assert outcome.reason == "invalid message: from_email must be an email address"
    assert (outcome.email_id, outcome.delivery_ids) == (
        partly["email_id"],
        tuple(d["id"] for d in partly["deliveries"]),
    )
    assert client.payloads == []


def test_unexpected_client_errors_are_retried_then_failed():
    body = encode_work(work_message())
    retry = unexpected_error(body, 0, SETTINGS, KeyError("boom"))
    assert retry.kind is OutcomeKind.RETRY
    assert retry.reason == "internal error: KeyError: 'boom'"
    assert unexpected_error(body, 4, SETTINGS, KeyError("boom")).kind is OutcomeKind.FAILED


# -- backoff -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("attempt", "nominal"), [(1, 2), (2, 8), (3, 32), (4, 128), (5, 512), (6, 600), (40, 600)])
def test_backoff_is_exponential_with_jitter_in_the_upper_half_and_capped(attempt, nominal):
    rng = random.Random(attempt)
    delays = [backoff_seconds(attempt, SETTINGS, rng) for _ in range(500)]
    assert all(nominal / 2 <= d <= nominal for d in delays)
    assert max(delays) - min(delays) > nominal * 0.4  # the jitter actually spreads the retries
    assert SETTINGS.backoff_seconds(attempt) == nominal


def test_backoff_follows_the_settings():
    settings = Settings(retry_base_seconds=0.2, retry_max_seconds=1)
    assert [settings.backoff_seconds(n) for n in (1, 2, 3)] == [0.2, pytest.approx(0.8), 1]


# -- 429 headers -------------------------------------------------------------------------------


def wait_for_headers(headers: dict[str, str]) -> float:
    return rate_limit_wait(Response(429, headers), now=NOW, rng=random.Random(1))


def test_rate_limit_reset_header_is_epoch_seconds():
    assert 12 <= wait_for_headers({"x-ratelimit-reset": str(int(NOW) + 12)}) <= 13


def test_retry_after_in_seconds_or_as_a_date():
    assert 4 <= wait_for_headers({"retry-after": "4"}) <= 4.4
    date = format_datetime(datetime.fromtimestamp(NOW, UTC) + timedelta(seconds=20), usegmt=True)
    assert 20 <= wait_for_headers({"retry-after": date}) <= 21


def test_rate_limit_wait_is_floored_capped_and_defaulted():
    assert RATE_LIMIT_MIN_SECONDS <= wait_for_headers({"x-ratelimit-reset": str(int(NOW) - 30)}) <= 1.1
    assert RATE_LIMIT_MAX_SECONDS <= wait_for_headers({"x-ratelimit-reset": str(int(NOW) + 86400)}) <= 61
    assert RATE_LIMIT_DEFAULT_SECONDS <= wait_for_headers({}) <= RATE_LIMIT_DEFAULT_SECONDS * 1.1
    assert RATE_LIMIT_DEFAULT_SECONDS <= wait_for_headers({"x-ratelimit-reset": "soon", "retry-after": "never"}) <= 5.5


def test_rate_limit_jitter_stays_within_ten_percent():
    rng = random.Random(3)
    waits = [rate_limit_wait(Response(429, {"retry-after": "5"}), now=NOW, rng=rng) for _ in range(300)]
    assert all(5 <= w <= 5.5 for w in waits)
    assert max(waits) - min(waits) > 0.3


# -- reasons -----------------------------------------------------------------------------------


def test_error_text_joins_sendgrid_errors_and_trims():
    body = json.dumps({"errors": [{"message": "a", "field": "x"}, {"message": "b", "field": None}]}).encode()
    assert error_text(body) == "a (x); b"
    assert error_text(b"<html>\n  Bad   Gateway\n</html>") == "<html> Bad Gateway </html>"
    assert len(error_text(b"x" * 5000)) == 500
    assert error_text(b"") == ""


# -- results (embedded mode records outcomes with these) ----------------------------------------


def test_result_for_each_outcome():
    sent, message = run(Response(202))
    assert result_for(sent) | {"at": None} == {
        "v": 1,
        "email_id": message.email_id,
        "deliveries": list(message.delivery_ids),
        "outcome": "sent",
        "attempt": 1,
        "reason": "",
        "status_code": 202,
        "at": None,
    }
    assert result_for(run(sendgrid_error(500, "x"))[0])["outcome"] == "retrying"
    assert result_for(run(sendgrid_error(400, "x"))[0])["outcome"] == "failed"
    assert result_for(run(Response(429))[0]) is None
    assert result_for(handle(b"junk", 0, ScriptedClient(), SETTINGS)) is None


def test_a_payload_carries_the_body_once_whatever_the_number_of_recipients():
    # The sender's memory per message is the body plus a line per recipient, never their product.
    text = "x" * 1_000_000
    message = work_message(deliveries=1000, text=text, html=f"<p>{text}</p>")

    size = len(json.dumps(build_payload(message)))

    assert size < 2 * len(text) + 1000 * 200
