"""Probes, the browsable API through a session login, the admin, and the demo admin command."""

import json
import os
import subprocess
import sys

import pytest
from django.test import Client, override_settings

from emailsystem.emails.models import SentEmail
from emailsystem.emails.tests.factories import sent_email
from emailsystem.users.tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.django_db


def test_healthz_answers_without_touching_anything(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ok_when_the_database_answers(client):
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


def test_readyz_is_503_when_the_database_is_unreachable():
    # A real process pointed at a port where no database listens.
    env = {**os.environ, "DATABASE_URL": "postgres://postgres@127.0.0.1:1/nowhere", "DATABASE_CONN_MAX_AGE": "0"}
    script = (
        "import django, json; django.setup();"
        "from django.test import Client;"
        "r = Client().get('/readyz', HTTP_HOST='localhost'); print(r.status_code, json.dumps(r.json()))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True, timeout=60
    )

    status, _, body = result.stdout.strip().partition(" ")
    assert status == "503"
    assert "database unreachable" in body


def test_an_api_request_while_the_database_is_unreachable_is_a_json_503_with_retry_after():
    # A real process pointed at a port where no database listens: the token lookup cannot connect.
    env = {**os.environ, "DATABASE_URL": "postgres://postgres@127.0.0.1:1/nowhere", "DATABASE_CONN_MAX_AGE": "0"}
    script = (
        "import django, json; django.setup();"
        "from django.test import Client;"
        "r = Client(raise_request_exception=False).post('/api/v1/emails/sent-email/',"
        " {'recipients': ['a@example.com'], 'subject': 's', 'body': 'b'}, content_type='application/json',"
        " HTTP_HOST='localhost', HTTP_AUTHORIZATION='Token 0123456789abcdef');"
        "print(r.status_code, r.get('Retry-After'), r.content.decode())"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True, timeout=60
    )

    status, retry_after, body = result.stdout.strip().split(" ", 2)
    assert (status, retry_after) == ("503", "5")
    assert json.loads(body) == {
        "detail": "The database is unavailable; try again shortly.",
        "code": "database_unavailable",
    }


@override_settings(REQUEST_MAX_BYTES=1024)
def test_any_route_refuses_an_oversized_body_with_413(client):
    response = client.post("/api/v1/users/login/", "x" * 5000, content_type="application/json")

    assert response.status_code == 413


def test_the_root_redirects_to_the_api(client):
    response = client.get("/")

    assert response.status_code == 302 and response["Location"] == "/api/v1/"


def session_login(user) -> Client:
    """Log in through the browsable API's login page, as a person in a browser does."""
    browser = Client(enforce_csrf_checks=True)
    page = browser.get("/api-auth/login/")
    token = page.cookies["csrftoken"].value
    response = browser.post(
        "/api-auth/login/",
        {"username": user.email, "password": DEFAULT_PASSWORD, "csrfmiddlewaretoken": token, "next": "/api/v1/"},
    )
    assert response.status_code == 302, "login through the browsable API failed"
    return browser


def test_the_browsable_api_shows_the_send_form_after_a_session_login(user):
    browser = session_login(user)

    page = browser.get("/api/v1/emails/sent-email/", HTTP_ACCEPT="text/html")

    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="recipients"' in html or "recipients" in html
    assert "<form" in html and "POST" in html
    assert user.email in html  # logged in as this user


def test_a_browser_session_can_send_with_its_csrf_token(user):
    browser = session_login(user)

    response = browser.post(
        "/api/v1/emails/sent-email/",
        {"recipients": ["a@example.com"], "subject": "s", "body": "b"},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=browser.cookies["csrftoken"].value,
    )

    assert response.status_code == 202
    assert SentEmail.objects.get().sender == user


def test_a_browser_session_without_csrf_cannot_send(user):
    browser = session_login(user)

    response = browser.post(
        "/api/v1/emails/sent-email/",
        {"recipients": ["a@example.com"], "subject": "s", "body": "b"},
        content_type="application/json",
    )

    assert response.status_code == 403
    assert not SentEmail.objects.exists()


def test_the_browsable_api_shows_the_template_form_to_admins(admin):
    browser = session_login(admin)

    html = browser.get("/api/v1/emails/email-template/", HTTP_ACCEPT="text/html").content.decode()

    assert 'name="html_body"' in html and 'name="subject"' in html


@pytest.mark.parametrize(
    "path",
    [
        "/admin/",
        "/admin/users/user/",
        "/admin/users/user/?q=user",
        "/admin/emails/emailtemplate/",
        "/admin/emails/sentemail/",
        "/admin/emails/sentemail/?status__exact=queued",
        "/admin/emails/sentemail/?q=carol",
        "/admin/emails/delivery/?status__exact=queued",
        "/admin/emails/recipient/",
    ],
)
def test_admin_pages_render(admin, path):
    sent_email(user=admin)
    browser = Client()
    browser.force_login(admin)

    assert browser.get(path).status_code == 200


def test_admin_shows_a_sent_email_with_its_recipients_but_cannot_forge_one(admin):
    email = sent_email(user=admin, recipients=["carol@example.com"])
    browser = Client()
    browser.force_login(admin)

    detail = browser.get(f"/admin/emails/sentemail/{email.pk}/change/")
    add = browser.get("/admin/emails/sentemail/add/")
    edit = browser.post(f"/admin/emails/sentemail/{email.pk}/change/", {"subject": "forged"})

    assert detail.status_code == 200 and "carol@example.com" in detail.content.decode()
    assert add.status_code == 403
    assert edit.status_code == 403
    email.refresh_from_db()
    assert email.subject == "Subject"


def test_admin_user_page_shows_and_revokes_tokens(admin, user):
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=user)
    browser = Client()
    browser.force_login(admin)

    page = browser.get(f"/admin/users/user/{user.pk}/change/")
    revoke = browser.post("/admin/users/user/", {"action": "revoke_tokens", "_selected_action": [user.pk]}, follow=True)

    assert token.key[:10] in page.content.decode()
    assert revoke.status_code == 200
    assert not Token.objects.filter(user=user).exists()


def test_a_non_staff_user_cannot_use_the_admin(user):
    browser = Client()
    browser.force_login(user)

    assert browser.get("/admin/emails/sentemail/").status_code == 302  # to the admin login


def test_demo_admin_creates_a_superuser_and_prints_stable_credentials(settings, tmp_path):
    from io import StringIO

    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    settings.DEBUG = True
    settings.BASE_DIR = tmp_path
    first, second = StringIO(), StringIO()

    call_command("demo_admin", stdout=first)
    call_command("demo_admin", stdout=second)

    assert first.getvalue() == second.getvalue()
    password = first.getvalue().strip().rsplit(" / ", 1)[1]
    admin = get_user_model().objects.get(email="admin@example.com")
    assert admin.is_superuser and admin.check_password(password)


def test_demo_admin_refuses_to_run_outside_debug(settings):
    from django.core.management import CommandError, call_command

    settings.DEBUG = False
    with pytest.raises(CommandError):
        call_command("demo_admin")


def test_admin_requeues_the_failed_recipients_of_a_sent_email(admin):
    from emailsystem.emails.models import Delivery, DeliveryStatus, OutboxMessage

    email = sent_email(user=admin, recipients=["ok@example.com", "bounced@example.com"])
    Delivery.objects.filter(recipient__email="bounced@example.com").update(
        status=DeliveryStatus.FAILED, reason="SendGrid 400: invalid"
    )
    OutboxMessage.objects.all().delete()
    browser = Client()
    browser.force_login(admin)

    response = browser.post(
        "/admin/emails/sentemail/", {"action": "requeue_failed", "_selected_action": [email.pk]}, follow=True
    )

    assert "Requeued 1 failed recipient(s)" in response.content.decode()
    bounced = Delivery.objects.get(recipient__email="bounced@example.com")
    assert (bounced.status, bounced.reason) == (DeliveryStatus.QUEUED, "")
    assert list(OutboxMessage.objects.values_list("delivery_ids", flat=True)) == [[bounced.pk]]
