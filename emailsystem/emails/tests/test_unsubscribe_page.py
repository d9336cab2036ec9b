"""/u/<token>: a GET shows the button and changes nothing; the one-click POST suppresses the
recipient for the sending user only, records it as an unsubscribe event, and is harmless to repeat;
a token this service did not sign is a 400 page."""

from urllib.parse import urlsplit

import pytest
from django.test import Client

from emailsender.unsubscribe import ONE_CLICK_FIELD, ONE_CLICK_VALUE
from emailsystem.emails.delivery.work import work_message_for_outbox
from emailsystem.emails.models import (
    Delivery,
    DeliveryEvent,
    DeliveryStatus,
    OutboxMessage,
    SentEmail,
    Suppression,
    SuppressionReason,
)
from emailsystem.emails.tests.factories import sent_email
from emailsystem.emails.unsubscribe import views
from emailsystem.emails.unsubscribe.services import DETAIL

pytestmark = pytest.mark.django_db
SEND_URL = "/api/v1/emails/sent-email/"
ONE_CLICK = {ONE_CLICK_FIELD: ONE_CLICK_VALUE}


@pytest.fixture
def public_url(settings):
    settings.PUBLIC_BASE_URL = "https://mail.example.com"


@pytest.fixture
def mail_client():
    """A mailbox provider's POST: no session, no CSRF token, CSRF checks on as for any real request."""
    return Client(enforce_csrf_checks=True)


def link_paths(email: SentEmail) -> dict[str, str]:
    """address -> the path of its one-click link, as the work message carries it."""
    outbox = OutboxMessage.objects.get(sent_email=email)
    return {d.to: urlsplit(d.unsubscribe).path for d in work_message_for_outbox(outbox).deliveries if d.unsubscribe}


@pytest.fixture
def newsletter(user, public_url):
    return sent_email(user=user, recipients=["reader@example.com", "other@example.com"], unsubscribe=True)


def nothing_changed() -> bool:
    statuses = set(Delivery.objects.values_list("status", flat=True))
    return not Suppression.objects.exists() and not DeliveryEvent.objects.exists() and statuses == {"queued"}


def text(response) -> str:
    return response.content.decode()


def test_a_get_shows_the_button_and_changes_nothing(client, newsletter):
    path = link_paths(newsletter)["reader@example.com"]

    response = client.get(path)
    head = client.head(path)

    assert response.status_code == head.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert views.CONFIRM.heading in text(response)
    assert f'<input type="hidden" name="{ONE_CLICK_FIELD}" value="{ONE_CLICK_VALUE}">' in text(response)
    assert f'<button type="submit">{views.BUTTON}</button>' in text(response)
    assert "no-cache" in response["Cache-Control"] and "noindex" in text(response)
    assert client.get(path, ONE_CLICK).status_code == 200  # the body's field in a query string is still a GET
    assert nothing_changed()


def test_the_one_click_post_suppresses_the_recipient_and_records_an_unsubscribe_event(mail_client, user, newsletter):
    path = link_paths(newsletter)["reader@example.com"]

    response = mail_client.post(path, ONE_CLICK)

    assert response.status_code == 200
    assert views.DONE.heading in text(response)
    [entry] = Suppression.objects.select_related("recipient", "delivery")
    assert (entry.user, entry.recipient.email, entry.reason) == (user, "reader@example.com", "unsubscribe")
    assert entry.reason == SuppressionReason.UNSUBSCRIBE
    assert entry.delivery.sent_email == newsletter
    [event] = DeliveryEvent.objects.all()
    assert (event.delivery, event.event, event.detail) == (entry.delivery, "unsubscribe", DETAIL)
    statuses = dict(Delivery.objects.values_list("recipient__email", "status"))
    assert statuses == {"reader@example.com": DeliveryStatus.UNSUBSCRIBED, "other@example.com": DeliveryStatus.QUEUED}


def test_the_log_shows_the_unsubscribe_in_the_recipients_history(mail_client, user_client, newsletter):
    mail_client.post(link_paths(newsletter)["reader@example.com"], ONE_CLICK)

    detail = user_client.get(f"{SEND_URL}{newsletter.pk}/").json()

    reader = next(r for r in detail["recipients"] if r["email"] == "reader@example.com")
    assert reader["status"] == "unsubscribed"
    assert [(e["event"], e["detail"]) for e in reader["events"]] == [("unsubscribe", DETAIL)]
    [listed] = user_client.get("/api/v1/emails/suppressions/").json()["results"]
    assert (listed["email"], listed["reason"], listed["email_id"]) == (
        "reader@example.com",
        "unsubscribe",
        newsletter.pk,
    )


def test_a_repeated_post_is_answered_the_same_and_records_nothing_more(mail_client, newsletter):
    path = link_paths(newsletter)["reader@example.com"]

    answers = [mail_client.post(path, ONE_CLICK) for _ in range(3)]
    multipart = mail_client.post(path, ONE_CLICK)  # the test client's default encoding: multipart/form-data

    assert [a.status_code for a in [*answers, multipart]] == [200] * 4
    assert Suppression.objects.count() == DeliveryEvent.objects.count() == 1


def test_a_form_encoded_body_as_in_rfc_8058_works(mail_client, newsletter):
    path = link_paths(newsletter)["reader@example.com"]

    response = mail_client.post(path, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")

    assert response.status_code == 200 and Suppression.objects.count() == 1


@pytest.mark.parametrize(
    "body",
    [{}, {ONE_CLICK_FIELD: "one-click"}, {"List-Unsubscribe-Post": ONE_CLICK_VALUE}, {"unsubscribe": "1"}],
    ids=["empty", "wrong-value", "wrong-field", "other-form"],
)
def test_a_post_without_the_one_click_field_is_a_400_and_changes_nothing(mail_client, newsletter, body):
    response = mail_client.post(link_paths(newsletter)["reader@example.com"], body)

    assert response.status_code == 400
    assert views.NOT_ONE_CLICK.heading in text(response) and f'name="{ONE_CLICK_FIELD}"' in text(response)
    assert nothing_changed()


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_tampered_token_is_a_400_page_and_changes_nothing(mail_client, newsletter, method):
    path = link_paths(newsletter)["reader@example.com"]
    other = link_paths(newsletter)["other@example.com"]
    # The reader's ids with the other recipient's signature: each part is valid, together they are not.
    spliced = path.rpartition(":")[0] + ":" + other.rpartition(":")[2]

    for bad in (spliced, path[:-2], path.replace("/u/", "/u/9"), "/u/not-a-token"):
        response = getattr(mail_client, method)(bad, ONE_CLICK)
        assert response.status_code == 400, bad
        assert views.INVALID.heading in text(response) and "<button" not in text(response)
    assert nothing_changed()


def test_other_methods_are_refused(mail_client, newsletter):
    path = link_paths(newsletter)["reader@example.com"]

    assert mail_client.put(path, ONE_CLICK).status_code == 405
    assert mail_client.delete(path).status_code == 405
    assert nothing_changed()


def test_the_next_send_skips_the_recipient_for_that_user_only(mail_client, user_client, other_client, newsletter):
    mail_client.post(link_paths(newsletter)["reader@example.com"], ONE_CLICK)
    body = {"recipients": ["reader@example.com", "other@example.com"], "subject": "s", "body": "b"}

    mine = user_client.post(SEND_URL, body, format="json").json()
    theirs = other_client.post(SEND_URL, body, format="json").json()

    assert [r["status"] for r in mine["recipients"]] == ["suppressed", "queued"]
    assert [r["status"] for r in theirs["recipients"]] == ["queued", "queued"]


def test_the_link_still_works_after_the_email_was_deleted(mail_client, user, newsletter):
    path = link_paths(newsletter)["reader@example.com"]
    newsletter.delete()

    assert mail_client.post(path, ONE_CLICK).status_code == 200

    [entry] = Suppression.objects.select_related("recipient")
    assert (entry.user, entry.recipient.email, entry.reason, entry.delivery) == (
        user,
        "reader@example.com",
        SuppressionReason.UNSUBSCRIBE,
        None,
    )
    assert mail_client.post(path, ONE_CLICK).status_code == 200
    assert Suppression.objects.count() == 1


def test_a_link_of_a_deleted_user_changes_nothing_and_still_answers(mail_client, user, newsletter):
    path = link_paths(newsletter)["reader@example.com"]
    user.delete()

    assert mail_client.post(path, ONE_CLICK).status_code == 200
    assert not Suppression.objects.exists()


def test_an_earlier_reason_stays_when_the_recipient_also_unsubscribes(mail_client, user, newsletter):
    delivery = Delivery.objects.get(recipient__email="reader@example.com")
    Suppression.objects.create(user=user, recipient=delivery.recipient, reason=SuppressionReason.BOUNCE)

    assert mail_client.post(link_paths(newsletter)["reader@example.com"], ONE_CLICK).status_code == 200

    assert list(Suppression.objects.values_list("reason", flat=True)) == [SuppressionReason.BOUNCE]
    assert DeliveryEvent.objects.get().event == "unsubscribe"
