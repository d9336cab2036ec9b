"""GET sent-email: the caller's own log, newest first, filtered by recipient, time and status."""

import datetime

import pytest
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from emailsystem.emails.models import EmailStatus, SentEmail
from emailsystem.emails.tests.factories import sent_email

URL = "/api/v1/emails/sent-email/"
pytestmark = pytest.mark.django_db


def at(email, moment):
    SentEmail.objects.filter(pk=email.pk).update(created=moment)
    return email


def ids(response):
    assert response.status_code == 200, response.json()
    return [item["id"] for item in response.json()["results"]]


@pytest.fixture
def log(user, other_user):
    """Three emails of the user on 20, 21 and 22 Nov (noon UTC), and one of another user."""
    utc = datetime.UTC
    return {
        "old": at(sent_email(user=user, recipients=["a@example.com"]), datetime.datetime(2026, 11, 20, 12, tzinfo=utc)),
        "mid": at(
            sent_email(user=user, recipients=["a@example.com", "b@example.com"]),
            datetime.datetime(2026, 11, 21, 12, tzinfo=utc),
        ),
        "new": at(sent_email(user=user, recipients=["c@example.com"]), datetime.datetime(2026, 11, 22, 12, tzinfo=utc)),
        "theirs": at(
            sent_email(user=other_user, recipients=["a@example.com"]), datetime.datetime(2026, 11, 21, 13, tzinfo=utc)
        ),
    }


def test_the_log_lists_only_my_emails_newest_first(user_client, log):
    response = user_client.get(URL)

    assert ids(response) == [log["new"].pk, log["mid"].pk, log["old"].pk]
    assert response.json()["count"] == 3
    first = response.json()["results"][0]
    assert first["recipients"] == [
        {
            "email": "c@example.com",
            "status": "queued",
            "attempts": 0,
            "reason": "",
            "sent_at": None,
            "delivered_at": None,
            "updated": first["recipients"][0]["updated"],
            "provider": "",
        }
    ]


def test_the_log_needs_authentication(api_client, log):
    assert api_client.get(URL).status_code == 401
    assert api_client.get(f"{URL}{log['old'].pk}/").status_code == 401


def test_someone_elses_email_is_404(user_client, log):
    assert user_client.get(f"{URL}{log['theirs'].pk}/").status_code == 404


def test_detail_shows_a_status_per_recipient_and_the_bodies(user_client, log):
    response = user_client.get(f"{URL}{log['mid'].pk}/")

    assert response.status_code == 200
    body = response.json()
    assert [(r["email"], r["status"]) for r in body["recipients"]] == [
        ("a@example.com", "queued"),
        ("b@example.com", "queued"),
    ]
    assert body["body"] == "Body" and body["context"] == {}


def test_filter_by_one_recipient(user_client, log):
    assert ids(user_client.get(URL, {"recipient": "A@example.com"})) == [log["mid"].pk, log["old"].pk]


def test_filter_by_several_recipients_lists_each_email_once(user_client, log):
    response = user_client.get(f"{URL}?recipient=a@example.com&recipient=b@example.com&recipient=c@example.com")

    assert ids(response) == [log["new"].pk, log["mid"].pk, log["old"].pk]
    assert response.json()["count"] == 3


def test_the_recipient_filter_never_reaches_other_users_emails(other_client, log):
    response = other_client.get(URL, {"recipient": "b@example.com"})

    assert ids(response) == []
    assert response.json()["count"] == 0


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"start_time": "2026-11-21"}, ["new", "mid"]),
        ({"end_time": "2026-11-21"}, ["mid", "old"]),  # a date-only end includes the whole day
        ({"start_time": "2026-11-21", "end_time": "2026-11-21"}, ["mid"]),
        ({"end_time": "2026-11-21T12:00:00Z"}, ["mid", "old"]),  # a datetime end is inclusive
        ({"end_time": "2026-11-21T11:59:59Z"}, ["old"]),
        ({"start_time": "2026-11-21T13:00:00+01:00"}, ["new", "mid"]),  # 12:00 UTC
        ({"start_time": "2026-11-21T13:00:00 01:00"}, ["new", "mid"]),  # the same, "+" left unencoded
        ({"start_time": "2026-11-21T12:00:01"}, ["new"]),  # naive means UTC
        ({"start_time": "2026-11-22", "recipient": "a@example.com"}, []),
    ],
)
def test_filter_by_time_window(user_client, log, params, expected):
    assert ids(user_client.get(URL, params)) == [log[name].pk for name in expected]


def test_filter_by_status(user_client, log):
    SentEmail.objects.filter(pk=log["old"].pk).update(status=EmailStatus.FAILED)

    assert ids(user_client.get(URL, {"status": "failed"})) == [log["old"].pk]
    assert ids(user_client.get(URL, {"status": "queued"})) == [log["new"].pk, log["mid"].pk]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start_time": "yesterday"}, "start_time"),
        ({"end_time": "2026-13-01"}, "end_time"),
        ({"end_time": "2026-02-30"}, "end_time"),
        ({"start_time": "2026-11-21T25:00:00"}, "start_time"),
        ({"start_time": "2026-11-22", "end_time": "2026-11-21"}, "end_time"),
        ({"status": "delivered-to-mars"}, "status"),
        ({"recipient": "x" * 300}, "recipient"),
        ({"recipient": "a\x00b@example.com"}, "recipient"),
        ({"recipient": "a\r\nb@example.com"}, "recipient"),
    ],
)
def test_bad_filters_are_400_with_the_field(user_client, log, params, field):
    response = user_client.get(URL, params)

    assert response.status_code == 400
    assert field in response.json()


def test_pagination(user_client, user):
    for _ in range(3):
        sent_email(user=user)

    first = user_client.get(URL, {"page_size": 2})
    second = user_client.get(first.json()["next"])

    assert first.json()["count"] == 3 and len(first.json()["results"]) == 2
    assert len(second.json()["results"]) == 1 and second.json()["next"] is None


@pytest.mark.parametrize("page", ["99", "0", "abc"])
def test_a_page_out_of_range_is_404(user_client, log, page):
    response = user_client.get(URL, {"page": page})

    assert response.status_code == 404
    assert response.json()["detail"] == "Invalid page."


def test_the_list_page_built_from_rows_matches_the_serializer(user, log):
    from emailsender.result_messages import ResultMessage
    from emailsystem.emails.delivery.results import delivery_results_apply
    from emailsystem.emails.selectors import LOG_FIELDS, deliveries_by_email, sent_email_list, sent_email_log_rows
    from emailsystem.emails.serializers import SentEmailListSerializer, sent_email_log_page

    email = log["mid"]
    first = email.deliveries.order_by("pk").first()
    delivery_results_apply(
        results=[
            ResultMessage(
                email_id=email.pk,
                deliveries=(first.pk,),
                outcome="sent",
                attempt=1,
                reason="",
                status_code=202,
                at=datetime.datetime(2026, 11, 21, 12, 5, tzinfo=datetime.UTC),
            )
        ]
    )
    rows = list(sent_email_log_rows(user=user))

    request = Request(APIRequestFactory().get("/api/v1/emails/sent-email/"))

    fast = sent_email_log_page(
        rows,
        deliveries_by_email(email_ids=[row["id"] for row in rows]),
        url_for=lambda pk: f"http://testserver/api/v1/emails/sent-email/{pk}/",
    )

    assert fast == SentEmailListSerializer(sent_email_list(user=user), many=True, context={"request": request}).data
    assert list(LOG_FIELDS) == [
        f for f in SentEmailListSerializer.Meta.fields if f not in ("recipients", "url", "attachments")
    ]
