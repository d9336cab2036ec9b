"""The chaos verdicts must be able to fail: each broken guarantee, fed in by hand, is reported."""

import datetime
import json

from chaos.arrivals import Copy, check_retry_spacing
from chaos.faults import Fault
from chaos.load import Answer
from chaos.outcome import Outcome
from chaos.tests.support import BEGAN, row
from chaos.verdicts import (
    _check_answers,
    _check_breakers,
    _check_duplicates,
    _check_readyz,
    _check_recorded_provider,
)


def outage() -> Fault:
    return Fault(began=BEGAN, cleared=BEGAN + 10, database_down=(BEGAN, BEGAN + 10))


def answer(started: float, status: int) -> Answer:
    return Answer(started=started, ended=started + 0.05, status=status, email_ids=(1,) if status == 202 else ())


def test_503_during_the_outage_is_expected_and_outside_it_is_a_failure():
    outcome = Outcome("database_down", "")
    _check_answers(outcome, outage(), [answer(BEGAN - 5, 202), answer(BEGAN + 5, 503)])
    assert outcome.passed and outcome.web_5xx == 1

    outcome = Outcome("database_down", "")
    _check_answers(outcome, outage(), [answer(BEGAN + 5, 503), answer(BEGAN + 20, 503)])
    assert outcome.failures == ["web answered 503 to 1 sends"]


def test_a_500_even_during_the_outage_is_a_failure():
    outcome = Outcome("database_down", "")
    _check_answers(outcome, outage(), [answer(BEGAN + 5, 503), answer(BEGAN + 6, 500)])
    assert outcome.failures == ["web answered 500 during the outage to 1 sends"]


def test_an_outage_with_no_5xx_is_reported_as_suspect():
    outcome = Outcome("database_down", "")
    _check_answers(outcome, outage(), [answer(BEGAN + 5, 202)])
    assert outcome.failures == ["no 5xx while the database was down: was it really down?"]


def test_no_answer_at_all_is_a_failure():
    outcome = Outcome("sender_kill", "")
    silent = Answer(started=BEGAN, ended=BEGAN + 20, status=0, email_ids=(), error="TimeoutError: timed out")
    _check_answers(outcome, Fault(began=BEGAN, cleared=BEGAN + 2), [silent])
    assert outcome.failures == ["web answered TimeoutError: timed out to 1 sends"]


def test_readyz_must_say_503_during_the_outage_and_200_outside_it():
    outcome = Outcome("database_down", "")
    _check_readyz(outcome, outage(), [(BEGAN - 10, 200), (BEGAN + 5, 503), (BEGAN + 30, 200)])
    assert outcome.passed and outcome.readyz_503 == 1

    outcome = Outcome("database_down", "")
    _check_readyz(outcome, outage(), [(BEGAN + 5, 200), (BEGAN + 30, 503)])
    assert len(outcome.failures) == 2


def test_duplicates_need_a_crash_and_a_first_copy_before_it():
    crash = Fault(began=BEGAN, cleared=BEGAN + 2, crash_at=BEGAN + 1, duplicate_bound=3)
    outcome = Outcome("sender_kill", "")
    _check_duplicates(outcome, crash, {7: [BEGAN + 0.5, BEGAN + 3], 8: [BEGAN + 0.6]}, {7: 70, 8: 80})
    assert outcome.passed and outcome.duplicated == 1

    outcome = Outcome("sender_kill", "")
    _check_duplicates(outcome, crash, {7: [BEGAN + 1.5, BEGAN + 3]}, {7: 70})
    assert outcome.failures == [
        "1 duplicates whose first copy was accepted after the crash (ids [7], emails [70]; "
        "copies at [[0.5, 2.0]] s after the crash)"
    ]

    outcome = Outcome("results_kill", "")
    _check_duplicates(outcome, Fault(began=BEGAN, cleared=BEGAN + 2), {7: [BEGAN, BEGAN + 3]}, {7: 70})
    assert outcome.failures == ["1 deliveries reached SendGrid twice with no crash to explain it"]


def test_more_duplicates_than_the_crash_could_hold_is_a_failure():
    crash = Fault(began=BEGAN, cleared=BEGAN + 2, crash_at=BEGAN + 1, duplicate_bound=1)
    outcome = Outcome("sender_kill", "")
    _check_duplicates(outcome, crash, {7: [BEGAN, BEGAN + 3], 8: [BEGAN, BEGAN + 3]}, {7: 70, 8: 80})
    assert outcome.failures == ["2 duplicated deliveries, more than the 1 the crash could hold"]


def test_a_retry_before_its_wait_is_a_failure():
    def request(at: float, status: int | str) -> dict:
        return {"at": BEGAN + at, "status": status, "delivery_ids": [7]}

    on_time = [request(0, 500), request(1, 429), request(3.5, "hang"), request(8, 202)]
    outcome = Outcome("sendgrid_errors", "")
    check_retry_spacing(outcome, on_time, {7}, sendgrid_timeout=3)
    assert outcome.passed

    hurried = [request(0, 429), request(0.5, "hang"), request(1.0, 202)]
    outcome = Outcome("sendgrid_errors", "")
    check_retry_spacing(outcome, hurried, {7}, sendgrid_timeout=3)
    assert outcome.failures == [
        "1 retries after a 429 came before their wait was over",
        "1 retries after a hang came before their wait was over",
    ]


def test_a_202_without_every_email_id_is_a_failure():
    outcome = Outcome("sender_kill", "")
    batch = Answer(started=BEGAN, ended=BEGAN + 0.1, status=202, email_ids=(1, 2, 3, 4, 5), kind="batch", messages=5)
    short = Answer(started=BEGAN, ended=BEGAN + 0.1, status=202, email_ids=(), kind="batch", messages=5, error="x")
    _check_answers(outcome, Fault(began=BEGAN, cleared=BEGAN + 2), [batch, short])
    assert outcome.failures == ["web answered 202 without the ids (x) to 1 sends"]


def test_a_sent_delivery_must_have_arrived_through_the_provider_it_records():
    found = {7: [Copy(BEGAN, "sendgrid")], 8: [Copy(BEGAN, "smtp")]}
    rows = [row(7, provider="sendgrid"), row(8, provider="smtp")]
    outcome = Outcome("sendgrid_outage", "")
    _check_recorded_provider(outcome, rows, found)
    assert outcome.passed

    rows = [row(7, provider="smtp"), row(8, provider="smtp"), row(9, provider="sendgrid")]
    outcome = Outcome("sendgrid_outage", "")
    _check_recorded_provider(outcome, rows, found)
    assert outcome.failures == [
        "1 deliveries say sent but no provider accepted them (ids [9])",
        "1 deliveries record provider 'smtp' but arrived through another",
    ]


def breaker_line(at: float, to: str, message: str) -> str:
    ts = datetime.datetime.fromtimestamp(at, datetime.UTC).isoformat(timespec="milliseconds")
    entry = {"ts": ts, "logger": "emailsender.breaker", "msg": f"provider sendgrid breaker {to}: {message}"}
    return json.dumps({**entry, "provider": "sendgrid", "breaker_to": to})


def test_the_breakers_must_open_fail_their_probes_on_both_phases_and_close(tmp_path):
    fault = Fault(began=BEGAN, cleared=BEGAN + 20, sendgrid_down=(BEGAN, BEGAN + 20), failback_by=BEGAN + 27)
    lines = [
        breaker_line(BEGAN - 50, "open", "5 failures in a row, last: status 503"),  # an earlier scenario's
        breaker_line(BEGAN + 0.5, "open", "5 failures in a row, last: status 503"),
        breaker_line(BEGAN + 5.5, "half_open", "cool-down over, probing"),
        breaker_line(BEGAN + 5.5, "open", "probe failed: status 503"),
        breaker_line(
            BEGAN + 15.5, "open", "probe failed: connection: ConnectionRefusedError: [Errno 111] Connection refused"
        ),
        breaker_line(BEGAN + 20.5, "closed", "probe succeeded"),
    ]
    (tmp_path / "sender-3.log").write_text("\n".join(["not json", *lines]) + "\n")
    outcome = Outcome("sendgrid_outage", "")
    _check_breakers(outcome, fault, tmp_path)
    assert outcome.passed
    assert outcome.failover == {
        "breaker_opened": 1,
        "probe_failed_503": 1,
        "probe_failed_refused": 1,
        "breaker_closed": 1,
    }

    (tmp_path / "sender-3.log").write_text("\n".join(lines[:2]) + "\n")
    outcome = Outcome("sendgrid_outage", "")
    _check_breakers(outcome, fault, tmp_path)
    assert outcome.failures == [
        "no probe met the 503s",
        "no probe met the closed port",
        "no SendGrid breaker closed after the outage",
    ]
