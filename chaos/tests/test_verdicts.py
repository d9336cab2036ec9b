"""The chaos verdicts must be able to fail: each broken guarantee, fed in by hand, is reported."""

from chaos.faults import Fault
from chaos.load import Answer
from chaos.verdicts import Outcome, _check_answers, _check_duplicates, _check_readyz, _check_retry_spacing

BEGAN = 1_000.0


def outage() -> Fault:
    return Fault(began=BEGAN, cleared=BEGAN + 10, database_down=(BEGAN, BEGAN + 10))


def answer(started: float, status: int) -> Answer:
    return Answer(started=started, ended=started + 0.05, status=status, email_id=1 if status == 202 else None)


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
    silent = Answer(started=BEGAN, ended=BEGAN + 20, status=0, email_id=None, error="TimeoutError: timed out")
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
    _check_duplicates(outcome, crash, {7: [BEGAN + 0.5, BEGAN + 3], 8: [BEGAN + 0.6]})
    assert outcome.passed and outcome.duplicated == 1

    outcome = Outcome("sender_kill", "")
    _check_duplicates(outcome, crash, {7: [BEGAN + 1.5, BEGAN + 3]})
    assert outcome.failures == ["1 duplicates whose first copy was accepted after the crash (ids [7])"]

    outcome = Outcome("results_kill", "")
    _check_duplicates(outcome, Fault(began=BEGAN, cleared=BEGAN + 2), {7: [BEGAN, BEGAN + 3]})
    assert outcome.failures == ["1 deliveries reached SendGrid twice with no crash to explain it"]


def test_more_duplicates_than_the_crash_could_hold_is_a_failure():
    crash = Fault(began=BEGAN, cleared=BEGAN + 2, crash_at=BEGAN + 1, duplicate_bound=1)
    outcome = Outcome("sender_kill", "")
    _check_duplicates(outcome, crash, {7: [BEGAN, BEGAN + 3], 8: [BEGAN, BEGAN + 3]})
    assert outcome.failures == ["2 duplicated deliveries, more than the 1 the crash could hold"]


def test_a_retry_before_its_wait_is_a_failure():
    def request(at: float, status: int | str) -> dict:
        return {"at": BEGAN + at, "status": status, "delivery_ids": [7]}

    on_time = [request(0, 500), request(1, 429), request(3.5, "hang"), request(8, 202)]
    outcome = Outcome("sendgrid_errors", "")
    _check_retry_spacing(outcome, on_time, {7}, sendgrid_timeout=3)
    assert outcome.passed

    hurried = [request(0, 429), request(0.5, "hang"), request(1.0, 202)]
    outcome = Outcome("sendgrid_errors", "")
    _check_retry_spacing(outcome, hurried, {7}, sendgrid_timeout=3)
    assert outcome.failures == [
        "1 retries after a 429 came before their wait was over",
        "1 retries after a hang came before their wait was over",
    ]
