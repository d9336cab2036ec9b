"""The browsable API's HTML pages, through Django's test client (the browser tests drive the same in Chromium)."""

import pytest
from django.test import Client

from emailsystem.emails.models import SentEmail
from emailsystem.emails.tests.factories import EmailTemplateFactory, sent_email
from emailsystem.users.tests.factories import UserFactory

pytestmark = pytest.mark.django_db
HTML = {"HTTP_ACCEPT": "text/html"}
PASSWORD = "plum-orchard-lantern-7"


@pytest.fixture
def browser() -> Client:
    return Client()


def test_logging_in_on_the_api_page_starts_a_session_only_for_a_browser(browser):
    user = UserFactory(password=PASSWORD)

    as_client = Client().post(
        "/api/v1/users/login/", {"username": user.email, "password": PASSWORD}, content_type="application/json"
    )
    assert as_client.status_code == 200
    assert "sessionid" not in as_client.cookies

    page = browser.post("/api/v1/users/login/", {"username": user.email, "password": PASSWORD}, **HTML)
    assert page.status_code == 200
    assert "sessionid" in page.cookies
    assert user.email in page.content.decode()
    assert browser.get("/api/v1/emails/sent-email/", **HTML).status_code == 200


def test_logging_out_ends_the_session_and_the_page_shows_nobody(browser):
    user = UserFactory(password=PASSWORD)
    browser.force_login(user)

    page = browser.post("/api/v1/users/logout/", **HTML)

    assert page.status_code == 200
    assert user.email not in page.content.decode()
    assert browser.get("/api/v1/emails/sent-email/", HTTP_ACCEPT="application/json").status_code == 401


@pytest.mark.parametrize("path", ["/api/v1/users/register/", "/api/v1/users/login/"])
def test_post_only_pages_show_their_form_without_the_405_for_a_browser(browser, path):
    page = browser.get(path, **HTML)
    as_client = Client().get(path, HTTP_ACCEPT="application/json")

    assert page.status_code == 405 and as_client.status_code == 405  # the API itself is unchanged
    html = page.content.decode()
    assert 'class="form-only"' in html
    assert '<form action="' + path in html


def test_a_refused_registration_never_writes_the_password_back(browser):
    page = browser.post(
        "/api/v1/users/register/", {"email": "a@example.com", "username": "a", "password": "x1"}, **HTML
    )

    assert page.status_code == 400
    html = page.content.decode()
    assert 'value="a@example.com"' in html
    assert 'value="x1"' not in html


def test_pages_carry_the_service_name_and_icon(browser):
    html = browser.get("/api/v1/", **HTML).content.decode()

    assert "Django REST framework" not in html
    assert '<a class="navbar-brand" href="/api/v1/">emailsystem</a>' in html
    assert 'rel="icon"' in html
    icon = browser.get("/favicon.ico")
    assert icon.status_code == 301 and icon["Location"].endswith("core/favicon.ico")


def test_the_root_tells_a_visitor_to_log_in_and_a_logged_in_user_where_to_send(browser):
    assert "Register, then log in" in browser.get("/api/v1/", **HTML).content.decode()

    browser.force_login(UserFactory())
    html = browser.get("/api/v1/", **HTML).content.decode()
    assert "Register, then log in" not in html
    assert "Send email at" in html


def test_a_send_refused_by_a_service_redraws_the_form_with_what_was_typed(browser):
    browser.force_login(UserFactory())
    template = EmailTemplateFactory(subject="Hi {{ name }}", body="b", html_body="")

    page = browser.post(
        "/api/v1/emails/sent-email/",
        {"recipients": "a@example.com\nb@example.com", "template": template.pk, "context": "{}"},
        **HTML,
    )

    assert page.status_code == 400
    html = page.content.decode()
    assert "a@example.com\nb@example.com</textarea>" in html
    assert "The template uses variables the context does not give: name." in html
    assert not SentEmail.objects.exists()


def test_the_log_filter_box_shows_addresses_as_typed_and_splits_commas(browser):
    user = UserFactory()
    browser.force_login(user)
    sent_email(user=user, recipients=["a@example.com"])
    sent_email(user=user, recipients=["b@example.com"])
    sent_email(user=user, recipients=["c@example.com"])

    empty = browser.get("/api/v1/emails/sent-email/", **HTML).content.decode()
    assert 'name="recipient" id="id_recipient"' in empty and 'value="[]"' not in empty
    page = browser.get("/api/v1/emails/sent-email/?recipient=a@example.com,+b@example.com", **HTML)
    assert 'value="a@example.com, b@example.com"' in page.content.decode()
    found = browser.get("/api/v1/emails/sent-email/?recipient=a@example.com,+b@example.com").json()
    assert found["count"] == 2


def test_a_refused_filter_keeps_the_filters_dialog_with_the_error(browser):
    browser.force_login(UserFactory())

    page = browser.get("/api/v1/emails/sent-email/?start_time=yesterday", **HTML)

    assert page.status_code == 400
    html = page.content.decode()
    assert 'id="filtersModal"' in html
    assert 'value="yesterday"' in html
    assert "Enter an ISO 8601 date (2026-11-22) or datetime" in html
