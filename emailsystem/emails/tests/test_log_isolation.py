"""No user reads or filters into another's log: not by id, not by filter, not by counting."""

import pytest

from emailsystem.emails.tests.factories import sent_email

URL = "/api/v1/emails/sent-email/"
pytestmark = pytest.mark.django_db

# Every way a caller can narrow or page through the log.
PROBES = [
    {},
    {"recipient": "shared@example.com"},
    {"recipient": ["shared@example.com", "theirs-only@example.com"]},
    {"recipient": "theirs-only@example.com"},
    {"status": "queued"},
    {"start_time": "2000-01-01", "end_time": "2999-12-31"},
    {"page_size": 1},
    {"page_size": 100},
]


def snapshot(client) -> list[tuple[int, list[int]]]:
    """What each probe shows: the count and the ids on the page."""
    answers = []
    for params in PROBES:
        response = client.get(URL, params)
        assert response.status_code == 200, response.json()
        body = response.json()
        answers.append((body["count"], [item["id"] for item in body["results"]]))
    return answers


def test_nothing_the_log_shows_changes_when_another_user_sends(user, other_user, user_client):
    mine = sent_email(user=user, recipients=["shared@example.com"])
    before = snapshot(user_client)

    for _ in range(3):
        sent_email(user=other_user, recipients=["shared@example.com", "theirs-only@example.com"])

    assert snapshot(user_client) == before
    assert before[0] == (1, [mine.pk])
    assert before[3] == (0, []), "a recipient only the other user wrote to must find nothing"


def test_a_filter_on_another_users_recipient_finds_nothing(user, other_user, user_client):
    sent_email(user=other_user, recipients=["secret-contact@example.com"])

    response = user_client.get(URL, {"recipient": "secret-contact@example.com"})

    assert response.json() == {"count": 0, "next": None, "previous": None, "results": []}


def test_another_users_ids_are_404_like_ids_that_do_not_exist(user, other_user, user_client):
    theirs = sent_email(user=other_user)
    missing_id = theirs.pk + 1000

    answers = [user_client.get(f"{URL}{pk}/") for pk in (theirs.pk, missing_id)]

    assert [answer.status_code for answer in answers] == [404, 404]
    assert answers[0].json() == answers[1].json(), "the answer must not tell taken ids from free ones"


def test_paging_past_ones_own_log_is_404_whatever_others_sent(user, other_user, user_client):
    sent_email(user=user)
    for _ in range(3):
        sent_email(user=other_user)

    assert user_client.get(URL, {"page": 2, "page_size": 1}).status_code == 404
