"""Requeueing an email's failed recipients from its admin page: a POST with CSRF token, a message, the timeline."""

import re

import pytest
from django.contrib.auth.models import Permission

from emailsystem.emails.delivery.results import delivery_results_apply
from emailsystem.emails.models import DeliveryStatus, EmailStatus, OutboxMessage
from emailsystem.emails.tests.admin_pages import email_page, logged_in, timeline
from emailsystem.emails.tests.factories import sent_email
from emailsystem.emails.tests.test_delivery_results import result
from emailsystem.users.tests.factories import UserFactory

pytestmark = pytest.mark.django_db
BUTTON = "Requeue the failed recipient"


@pytest.fixture
def partly_failed(admin):
    """An email whose first recipient was sent and second refused by SendGrid."""
    email = sent_email(user=admin, recipients=["a@example.com", "b@example.com"])
    sent, failed = email.deliveries.order_by("pk")
    delivery_results_apply(
        results=[
            result(email, "sent", deliveries=[sent], attempt=1),
            result(email, "failed", deliveries=[failed], attempt=2, reason="HTTP 400: invalid"),
        ]
    )
    OutboxMessage.objects.all().delete()  # delivered: as the worker would leave it
    return email


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def requeue_form_token(html: str) -> str:
    """The CSRF token inside the requeue form, which must be a form of its own."""
    match = re.search(r'<div class="module" id="requeue-failed">.*?</div>', html, re.S)
    assert match, html
    form = match.group(0)
    assert form.count("<form") == 1
    return csrf_token(form)


def test_the_page_offers_the_requeue_and_the_post_requeues_the_failed_recipient(admin, partly_failed):
    browser = logged_in(admin, enforce_csrf_checks=True)
    page = email_page(browser, partly_failed.pk)
    assert "1 recipient of this email failed." in page
    assert BUTTON in page

    response = browser.post(
        f"/admin/emails/sentemail/{partly_failed.pk}/requeue/",
        {"csrfmiddlewaretoken": requeue_form_token(page)},
        follow=True,
    )

    assert response.redirect_chain == [(f"/admin/emails/sentemail/{partly_failed.pk}/change/", 302)]
    html = response.content.decode()
    assert "Requeued 1 failed recipient(s); they will be sent again." in html
    assert BUTTON not in html, "nothing has failed any more"
    requeued = [row for row in timeline(html) if row.kind == "requeued"]
    assert [(row.step, row.recipients) for row in requeued] == [("Requeued", "b@example.com")]
    statuses = dict(partly_failed.deliveries.values_list("recipient__email", "status"))
    assert statuses == {"a@example.com": DeliveryStatus.SENT, "b@example.com": DeliveryStatus.QUEUED}
    partly_failed.refresh_from_db()
    assert partly_failed.status == EmailStatus.QUEUED
    assert OutboxMessage.objects.get().delivery_ids == [
        partly_failed.deliveries.get(recipient__email="b@example.com").pk
    ]


def test_a_post_without_the_csrf_token_is_refused_and_requeues_nothing(admin, partly_failed):
    browser = logged_in(admin, enforce_csrf_checks=True)

    response = browser.post(f"/admin/emails/sentemail/{partly_failed.pk}/requeue/")

    assert response.status_code == 403
    assert not OutboxMessage.objects.exists()


def test_an_email_with_no_failure_shows_no_requeue_and_a_post_says_there_is_nothing_to_requeue(admin):
    email = sent_email(user=admin, recipients=["a@example.com"])
    delivery_results_apply(results=[result(email, "sent")])
    browser = logged_in(admin)

    page = email_page(browser, email.pk)
    response = browser.post(f"/admin/emails/sentemail/{email.pk}/requeue/", follow=True)

    assert BUTTON not in page and 'id="requeue-failed"' not in page
    html = response.content.decode()
    assert "None of the selected recipients has failed, or they are now suppressed; nothing to requeue." in html
    assert not [row for row in timeline(html) if row.kind == "requeued"]


def test_a_get_is_not_a_requeue(admin, partly_failed):
    response = logged_in(admin).get(f"/admin/emails/sentemail/{partly_failed.pk}/requeue/")

    assert response.status_code == 405
    assert partly_failed.deliveries.filter(status=DeliveryStatus.FAILED).count() == 1


def test_staff_who_may_only_view_see_the_failure_but_cannot_requeue(partly_failed):
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(codename__in=["view_sentemail", "view_delivery"]))
    browser = logged_in(viewer)

    page = email_page(browser, partly_failed.pk)
    response = browser.post(f"/admin/emails/sentemail/{partly_failed.pk}/requeue/")
    action = browser.post(
        "/admin/emails/sentemail/", {"action": "requeue_failed", "_selected_action": [partly_failed.pk]}
    )

    assert "1 recipient of this email failed." in page
    assert BUTTON not in page
    assert response.status_code == 403
    assert action.status_code in (200, 302)
    assert partly_failed.deliveries.filter(status=DeliveryStatus.FAILED).count() == 1


def test_an_email_that_does_not_exist_is_a_404(admin):
    assert logged_in(admin).post("/admin/emails/sentemail/999999/requeue/").status_code == 404
