"""Arrival verdicts: copies per delivery from both providers, scheduled sends never early,
failover during a SendGrid outage and back after it, recovery counted from when a send is due."""

from chaos.arrivals import Copy, check_failover, check_recovery, check_schedule, copies
from chaos.faults import Fault
from chaos.load import Answer
from chaos.outcome import Outcome
from chaos.tests.support import BEGAN, row
from emailsender.testing.smtp_sink import Received


def smtp_message(delivery_id: int, at: float) -> Received:
    data = f"From: a@example.com\r\nTo: b@example.com\r\nX-Delivery-Id: {delivery_id}\r\n\r\nHi\r\n".encode()
    return Received("a@example.com", ("b@example.com",), data, at)


def test_copies_are_the_fakes_accepted_requests_and_the_sinks_messages_per_delivery():
    requests = [
        {"at": BEGAN + 1, "status": 202, "delivery_ids": [7, 8]},
        {"at": BEGAN, "status": 503, "delivery_ids": [9]},
    ]
    found = copies(requests, [smtp_message(9, BEGAN + 0.5), smtp_message(7, BEGAN)])
    assert found == {
        7: [Copy(BEGAN, "smtp"), Copy(BEGAN + 1, "sendgrid")],
        8: [Copy(BEGAN + 1, "sendgrid")],
        9: [Copy(BEGAN + 0.5, "smtp")],
    }


def test_a_scheduled_delivery_that_arrives_before_send_at_is_a_failure():
    fault = Fault(began=BEGAN, cleared=BEGAN + 10)
    rows = [row(7, email_id=1), row(8, email_id=2)]
    on_time = {7: [Copy(BEGAN + 5, "sendgrid")], 8: [Copy(BEGAN + 1, "sendgrid")]}
    outcome = Outcome("sender_kill", "")
    check_schedule(outcome, fault, {1: BEGAN + 4}, rows, on_time)
    assert outcome.passed and outcome.scheduled_due_in_fault == 1

    outcome = Outcome("sender_kill", "")
    check_schedule(outcome, fault, {1: BEGAN + 6}, rows, on_time)
    assert outcome.early == 1
    assert outcome.failures == ["1 scheduled deliveries reached a provider before send_at (ids [7])"]


def test_scheduled_sends_none_of_which_came_due_during_the_fault_is_a_failure():
    outcome = Outcome("results_kill", "")
    check_schedule(outcome, Fault(began=BEGAN, cleared=BEGAN + 2), {1: BEGAN + 30}, [row(7)], {})
    assert outcome.failures == ["no accepted scheduled send came due during the fault"]


def outage() -> Fault:
    return Fault(began=BEGAN, cleared=BEGAN + 20, sendgrid_down=(BEGAN, BEGAN + 20), failback_by=BEGAN + 27)


def test_during_a_sendgrid_outage_mail_goes_through_smtp_and_comes_back_to_sendgrid():
    found = {
        1: [Copy(BEGAN - 1, "sendgrid")],
        2: [Copy(BEGAN + 0.2, "sendgrid")],  # accepted as the fake was being told to fail
        3: [Copy(BEGAN + 10, "smtp")],
        4: [Copy(BEGAN + 23, "smtp")],  # a breaker still waiting for its probe
        5: [Copy(BEGAN + 26, "sendgrid")],
    }
    outcome = Outcome("sendgrid_outage", "")
    check_failover(outcome, outage(), found, set(found))
    assert outcome.passed and outcome.via_smtp == 2
    assert outcome.failover == {
        "smtp_during_outage": 1,
        "sendgrid_during_outage": 0,
        "sendgrid_after": 1,
        "smtp_after_failback": 0,
    }


def test_an_outage_without_failover_or_without_failback_is_a_failure():
    found = {1: [Copy(BEGAN + 5, "sendgrid")], 2: [Copy(BEGAN + 28, "smtp")]}
    outcome = Outcome("sendgrid_outage", "")
    check_failover(outcome, outage(), found, set(found))
    assert outcome.failures == [
        "SMTP carried nothing while SendGrid was down",
        "SendGrid accepted 1 recipients while down: was it down?",
        "SendGrid carried nothing after it came back",
        "1 recipients went through SMTP more than 7.0s after SendGrid was back",
    ]


def test_recovery_counts_a_send_from_the_fault_s_end_and_skips_one_due_after_it():
    fault = Fault(began=BEGAN, cleared=BEGAN + 10)
    answers = [
        Answer(started=BEGAN, ended=BEGAN + 0.1, status=202, email_ids=(1,)),
        Answer(started=BEGAN, ended=BEGAN + 0.1, status=202, email_ids=(2,), kind="scheduled", send_at=BEGAN + 12),
    ]
    rows = [row(7, email_id=1, updated=BEGAN + 13), row(8, email_id=2, updated=BEGAN + 40)]
    found = {7: [Copy(BEGAN + 12, "sendgrid")], 8: [Copy(BEGAN + 39, "sendgrid")]}
    outcome = Outcome("database_down", "")
    check_recovery(outcome, fault, answers, rows, found)
    assert outcome.recovery_seconds == 3.0
