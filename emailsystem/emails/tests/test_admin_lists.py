"""The admin's change lists: deliveries newest first, and every datetime with seconds and the zone."""

import datetime

import pytest
from django.utils import timezone

from emailsystem.emails.delivery.results import delivery_results_apply
from emailsystem.emails.models import Delivery, SentEmail
from emailsystem.emails.tests.admin_pages import ADMIN_DATETIME, email_page, logged_in
from emailsystem.emails.tests.factories import sent_email
from emailsystem.emails.tests.test_delivery_results import result

pytestmark = pytest.mark.django_db


def listed(browser, path):
    response = browser.get(path)
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


def test_deliveries_and_emails_list_newest_first(admin):
    older = sent_email(user=admin, recipients=["a@example.com", "b@example.com"])
    newer = sent_email(user=admin, recipients=["c@example.com"])
    browser = logged_in(admin)

    deliveries = listed(browser, "/admin/emails/delivery/")
    emails = listed(browser, "/admin/emails/sentemail/")

    assert [delivery.recipient.email for delivery in deliveries] == ["c@example.com", "b@example.com", "a@example.com"]
    assert [email.pk for email in emails] == [newer.pk, older.pk]


def test_times_show_seconds_and_the_zone_in_lists_and_on_detail_pages(admin):
    moment = datetime.datetime(2026, 11, 28, 18, 44, 7, tzinfo=datetime.UTC)
    email = sent_email(user=admin, recipients=["a@example.com"])
    SentEmail.objects.filter(pk=email.pk).update(created=moment)
    delivery_results_apply(results=[result(email, "sent")])
    Delivery.objects.filter(sent_email=email).update(updated=moment + datetime.timedelta(seconds=1))
    browser = logged_in(admin)

    email_list = browser.get("/admin/emails/sentemail/").content.decode()
    delivery_list = browser.get("/admin/emails/delivery/").content.decode()
    page = email_page(browser, email.pk)
    users = browser.get("/admin/users/user/").content.decode()

    assert "2026-11-28 18:44:07 UTC" in email_list
    assert "2026-11-28 18:44:08 UTC" in delivery_list
    assert "2026-11-28 18:44:07 UTC" in page  # created, and the timeline's "Accepted"
    assert ADMIN_DATETIME.search(users)  # every app's admin, not only this one's
    for html in (email_list, delivery_list, page, users):
        assert "p.m." not in html and "a.m." not in html


def test_two_sends_a_second_apart_are_told_apart(admin):
    first = sent_email(user=admin, subject="first")
    second = sent_email(user=admin, subject="second")
    now = timezone.now().replace(microsecond=0)
    SentEmail.objects.filter(pk=first.pk).update(created=now)
    SentEmail.objects.filter(pk=second.pk).update(created=now + datetime.timedelta(seconds=1))

    html = logged_in(admin).get("/admin/emails/sentemail/").content.decode()

    assert len(set(ADMIN_DATETIME.findall(html))) == 2
