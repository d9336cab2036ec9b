"""The browsable API's pages for the send features, through Django's test client: the forms below an
answer, the Raw data box, the cancel page and the send form's tags, metadata and attachments
(test_browser_send_features.py drives the same in Chromium)."""

import datetime
import html
import json

import pytest
from django.test import Client
from django.utils import timezone

from emailsystem.emails.models import EmailStatus, SentEmail
from emailsystem.emails.tests.factories import EmailTemplateFactory, sent_email
from emailsystem.users.tests.factories import UserFactory

pytestmark = pytest.mark.django_db
HTML = {"HTTP_ACCEPT": "text/html"}
SEND = "/api/v1/emails/sent-email/"


@pytest.fixture
def browser(admin) -> Client:
    """A browser session of an admin's (conftest's `admin`), who may use every page here."""
    client = Client()
    client.force_login(admin)
    return client


def post_form(page: str) -> str:
    """The page's HTML form for POST (DRF's #post-object-form), or "" when it has none."""
    start = page.find('id="post-object-form"')
    return "" if start < 0 else page[start : page.find("</form>", start)]


def raw_box(page: str) -> str:
    """What the Raw data box holds."""
    start = page.find('name="_content"')
    start = page.find(">", start) + 1
    return html.unescape(page[start : page.find("</textarea>", start)]).strip()


def test_the_form_below_a_send_answer_is_the_send_form_holding_what_was_sent(browser):
    page = browser.post(SEND, {"recipients": "a@example.com", "subject": "Hello", "body": "b"}, **HTML)

    assert page.status_code == 202
    form = post_form(page.content.decode())
    assert ">a@example.com</textarea>" in form
    assert 'name="subject"' in form and 'value="Hello"' in form
    # Not the answer's fields (message, id, status...) as the next input.
    assert 'name="message"' not in form and 'name="id"' not in form


def test_a_preview_and_a_check_answer_above_their_own_forms_with_what_was_sent(browser):
    template = EmailTemplateFactory(subject="Hi {{ name }}", body="b", html_body="")
    preview = f"/api/v1/emails/email-template/{template.pk}/preview/"

    shown = browser.post(preview, {"context": '{"name": "Ada"}'}, **HTML)
    checked = browser.post(
        "/api/v1/emails/email-template/validate/", {"subject": "Hi {{ name }}", "body": "{{ a.b }}"}, **HTML
    )

    assert shown.status_code == 200
    form = post_form(shown.content.decode())
    assert "{&quot;name&quot;: &quot;Ada&quot;}</textarea>" in form
    assert 'name="subject"' not in form  # the rendered subject is the answer, not an input
    assert checked.status_code == 200
    form = post_form(checked.content.decode())
    assert ">{{ a.b }}</textarea>" in form and 'name="variables"' not in form


def test_an_answer_without_a_serializer_keeps_the_empty_form_an_issued_key_page_has(browser):
    page = browser.post("/api/v1/users/api-keys/", {"name": "billing-app", "scope": "send"}, **HTML)

    assert page.status_code == 201
    form = post_form(page.content.decode())
    assert 'name="name"' in form and 'value="billing-app"' not in form  # the form is for the next key


def test_a_page_whose_input_no_html_form_can_carry_offers_the_raw_data_form_alone(browser):
    page = browser.get("/api/v1/emails/batch/", **HTML).content.decode()

    assert post_form(page) == ""
    assert "not currently supported in HTML input" not in page
    assert json.loads(raw_box(page)) == {"messages": []}


def test_the_raw_data_box_keeps_a_refused_batch_and_a_body_that_did_not_parse(browser):
    batch = {"messages": [{"recipients": ["a@example.com"], "subject": "s", "body": "b"}, {"recipients": ["x@@y"]}]}
    typo = '{"messages": [{"recipients": ["a@example.com"] "subject": "s"}]}'

    refused = browser.post("/api/v1/emails/batch/", json.dumps(batch), content_type="application/json", **HTML)
    unparsed = browser.post("/api/v1/emails/batch/", typo, content_type="application/json", **HTML)

    assert refused.status_code == 400 and json.loads(raw_box(refused.content.decode())) == batch
    assert unparsed.status_code == 400 and raw_box(unparsed.content.decode()) == typo
    assert not SentEmail.objects.exists()


def test_an_accepted_batch_shows_its_answer_with_the_raw_data_form_and_no_filters(browser):
    batch = {"messages": [{"recipients": ["a@example.com"], "subject": "s", "body": "b"}]}

    page = browser.post("/api/v1/emails/batch/", json.dumps(batch), content_type="application/json", **HTML)

    assert page.status_code == 202
    html_text = page.content.decode()
    assert "Email sent. It might take a while to deliver." in html_text
    assert 'id="filtersModal"' not in html_text
    assert json.loads(raw_box(html_text)) == {"messages": []}  # accepted: the box starts afresh


def test_a_body_that_does_not_parse_leaves_the_person_logged_in_on_the_page_that_answers_it():
    user = UserFactory()
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    browser.get(SEND, **HTML)  # sets the CSRF cookie, as opening the page does
    token = browser.cookies["csrftoken"].value

    page = browser.post(SEND, "{oops", content_type="application/json", HTTP_X_CSRFTOKEN=token, **HTML)
    forged = browser.post(SEND, "{}", content_type="application/json", **HTML)

    assert page.status_code == 400
    html_text = page.content.decode()
    assert user.email in html_text and 'name="recipients"' in html_text
    assert raw_box(html_text) == "{oops"
    assert forged.status_code == 403 and "CSRF Failed" in forged.content.decode()  # no header, no token


def test_the_cancel_page_is_a_button_and_answers_with_the_email(browser):
    send_at = (timezone.now() + datetime.timedelta(hours=1)).isoformat()
    sent = browser.post(
        SEND,
        {"recipients": ["a@example.com"], "subject": "s", "body": "b", "send_at": send_at},
        content_type="application/json",
    ).json()
    cancel = f"{SEND}{sent['id']}/cancel/"

    page = browser.get(cancel, **HTML)
    answer = browser.post(cancel, **HTML)

    assert page.status_code == 405 and 'class="form-only"' in page.content.decode()
    form = post_form(page.content.decode())
    assert "<form" in form and 'name="status"' not in form and 'name="subject"' not in form
    assert answer.status_code == 200
    assert 'name="status"' not in post_form(answer.content.decode())
    assert SentEmail.objects.get(pk=sent["id"]).status == EmailStatus.CANCELED


def test_the_send_form_takes_tags_in_one_box_and_metadata_as_json(browser):
    page = browser.get(SEND, **HTML).content.decode()
    form = post_form(page)
    assert '<input name="tags"' in form and 'value="[]"' not in form
    assert ">{}</textarea>" in form.split('name="metadata"')[1][:200]
    assert "JSON only: give it in the <strong>Raw data</strong> tab." in form  # attachments

    sent = browser.post(
        SEND,
        {
            "recipients": "a@example.com",
            "subject": "s",
            "body": "b",
            "tags": "q4, ops  welcome",
            "metadata": '{"k": "v"}',
        },
        **HTML,
    )

    assert sent.status_code == 202
    email = SentEmail.objects.get()
    assert (sorted(email.tags), email.metadata) == (["ops", "q4", "welcome"], {"k": "v"})


def test_a_refused_tag_or_metadata_is_named_under_its_box_with_what_was_typed(browser):
    bad_tag = browser.post(
        SEND, {"recipients": "a@example.com", "subject": "s", "body": "b", "tags": "q4, no!pe"}, **HTML
    ).content.decode()
    bad_json = browser.post(
        SEND, {"recipients": "a@example.com", "subject": "s", "body": "b", "metadata": "{'k': 1}"}, **HTML
    ).content.decode()
    reserved = browser.post(
        SEND, {"recipients": "a@example.com", "subject": "s", "body": "b", "metadata": '{"email_id": "1"}'}, **HTML
    ).content.decode()

    assert 'value="q4, no!pe"' in bad_tag
    assert "no!pe: A tag holds only letters, digits and _ . : - (no spaces)." in bad_tag
    assert "{&#x27;k&#x27;: 1}</textarea>" in bad_json
    assert "Enter a JSON object such as {&quot;order&quot;: &quot;A-1&quot;}." in bad_json
    assert "email_id: &#x27;email_id&#x27; is reserved" in reserved
    assert not SentEmail.objects.exists()


def test_a_send_refused_for_an_attachment_points_the_form_to_the_answer(browser):
    email = sent_email()  # someone else's: the log stays theirs
    body = {
        "recipients": ["a@example.com"],
        "subject": "s",
        "body": "b",
        "attachments": [{"filename": "a.txt", "content": "not base64!"}],
    }

    page = browser.post(SEND, json.dumps(body), content_type="application/json", **HTML).content.decode()

    assert "Refused: the answer above names each problem, by position and field." in page
    assert json.loads(raw_box(page)) == body
    assert list(SentEmail.objects.all()) == [email]
