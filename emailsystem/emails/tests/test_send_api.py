"""POST sent-email: what a send records, and every bad input refused with nothing written."""

import json

import pytest
from django.test import override_settings

from emailsystem.emails.models import Delivery, DeliveryStatus, EmailStatus, Recipient, SentEmail
from emailsystem.emails.serializers import SEND_ACCEPTED_MESSAGE

URL = "/api/v1/emails/sent-email/"
pytestmark = pytest.mark.django_db


def send(client, **payload):
    return client.post(URL, payload, format="json")


def nothing_written():
    return not SentEmail.objects.exists() and not Delivery.objects.exists() and not Recipient.objects.exists()


def test_a_template_send_is_accepted_rendered_and_queued_per_recipient(user_client, user, template):
    response = send(
        user_client,
        recipients=["carol@example.com", "dan@example.com", "erin@example.com"],
        template=template.pk,
        context={"name": "Ada", "order": "<42>"},
    )

    assert response.status_code == 202
    body = response.json()
    assert body["message"] == SEND_ACCEPTED_MESSAGE
    assert body["status"] == "queued"
    assert body["recipients"] == [
        {"email": "carol@example.com", "status": "queued"},
        {"email": "dan@example.com", "status": "queued"},
        {"email": "erin@example.com", "status": "queued"},
    ]
    email = SentEmail.objects.get(pk=body["id"])
    assert email.sender == user
    assert email.status == EmailStatus.QUEUED
    assert email.subject == "Hello Ada"
    assert email.body == "Hi Ada, your order <42> shipped."  # plain text: not HTML-escaped
    assert email.html_body == "<p>Hi Ada, your order <b>&lt;42&gt;</b> shipped.</p>"  # HTML: escaped
    assert email.template_name == template.name
    assert email.from_email == user.email and email.reply_to == ""
    assert list(email.deliveries.values_list("status", flat=True)) == [DeliveryStatus.QUEUED] * 3


def test_an_ad_hoc_send_is_stored_as_written(user_client):
    response = send(
        user_client, recipients=["a@example.com"], subject="Hi {{ x }}", body="Plain", html_body="<i>rich</i>"
    )

    assert response.status_code == 202
    email = SentEmail.objects.get()
    assert (email.subject, email.body, email.html_body) == ("Hi {{ x }}", "Plain", "<i>rich</i>")
    assert email.template is None


def test_duplicates_in_any_letter_case_are_sent_to_once(user_client):
    response = send(user_client, recipients=["A@Example.com", "a@example.com", "b@example.com"], subject="s", body="b")

    assert response.status_code == 202
    assert [r["email"] for r in response.json()["recipients"]] == ["a@example.com", "b@example.com"]
    assert SentEmail.objects.get().recipient_count == 2


def test_a_recipient_row_is_shared_across_emails(user_client, other_client):
    send(user_client, recipients=["shared@example.com", "one@example.com"], subject="s", body="b")
    send(other_client, recipients=["SHARED@example.com"], subject="s", body="b")

    assert Recipient.objects.count() == 2
    assert Delivery.objects.filter(recipient__email="shared@example.com").count() == 2


def test_editing_or_deleting_the_template_never_rewrites_the_log(user_client, admin_client_api, template):
    sent = send(
        user_client, recipients=["a@example.com"], template=template.pk, context={"name": "Ada", "order": "42"}
    ).json()

    admin_client_api.patch(f"/api/v1/emails/email-template/{template.pk}/", {"subject": "Changed"}, format="json")
    admin_client_api.delete(f"/api/v1/emails/email-template/{template.pk}/")

    logged = user_client.get(f"{URL}{sent['id']}/").json()
    assert logged["subject"] == "Hello Ada"
    assert logged["template"] is None
    assert logged["template_name"] == template.name


@override_settings(EMAIL_FROM_ADDRESS="noreply@service.example")
def test_a_configured_from_address_sends_from_it_and_replies_go_to_the_user(user_client, user):
    send(user_client, recipients=["a@example.com"], subject="s", body="b")

    email = SentEmail.objects.get()
    assert (email.from_email, email.reply_to) == ("noreply@service.example", user.email)


def test_anonymous_sends_get_401(api_client):
    response = send(api_client, recipients=["a@example.com"], subject="s", body="b")

    assert response.status_code == 401
    assert nothing_written()


BAD_SENDS = [
    pytest.param({"subject": "s", "body": "b"}, "recipients", id="missing-recipients"),
    pytest.param({"recipients": "a@example.com", "subject": "s", "body": "b"}, "recipients", id="not-a-list"),
    pytest.param({"recipients": [], "subject": "s", "body": "b"}, "recipients", id="empty-list"),
    pytest.param({"recipients": ["nope"], "subject": "s", "body": "b"}, "recipients", id="invalid-address"),
    pytest.param({"recipients": [42], "subject": "s", "body": "b"}, "recipients", id="address-not-a-string"),
    pytest.param(
        {"recipients": ["a@example.com\r\nBcc: x@y.z"], "subject": "s", "body": "b"}, "recipients", id="crlf-address"
    ),
    pytest.param(
        {"recipients": ["a@example.com\n"], "subject": "s", "body": "b"}, "recipients", id="trailing-newline-address"
    ),
    pytest.param(
        {"recipients": ["a@example.com"], "subject": "Hi\r\nBcc: x@y.z", "body": "b"}, "subject", id="crlf-subject"
    ),
    pytest.param(
        {"recipients": ["a@example.com"], "subject": "x" * 999, "body": "b"}, "subject", id="subject-too-long"
    ),
    pytest.param({"recipients": ["a@example.com"], "template": 999999}, "template", id="unknown-template"),
    pytest.param({"recipients": ["a@example.com"], "template": "abc"}, "template", id="template-not-an-id"),
    pytest.param({"recipients": ["a@example.com"], "template": 10**30}, "template", id="template-id-out-of-range"),
    pytest.param({"recipients": ["a@example.com"], "template": True}, "template", id="template-id-boolean"),
    pytest.param({"recipients": ["a@example.com"], "template": [1]}, "template", id="template-id-a-list"),
    pytest.param({"recipients": ["a@example.com"], "template": {"id": 1}}, "template", id="template-id-an-object"),
    pytest.param({"recipients": ["a@example.com"], "subject": "s"}, "body", id="ad-hoc-without-body"),
    pytest.param({"recipients": ["a@example.com"]}, "subject", id="neither-template-nor-content"),
    pytest.param(
        {"recipients": ["a@example.com"], "subject": "s", "body": "b", "context": {"a": 1}},
        "context",
        id="context-with-ad-hoc",
    ),
]


@pytest.mark.parametrize(("payload", "field"), BAD_SENDS)
def test_bad_sends_are_refused_with_a_field_message(user_client, payload, field):
    response = send(user_client, **payload)

    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert nothing_written()


@pytest.mark.parametrize("context", [["a"], "text", 3], ids=["list", "string", "number"])
def test_a_context_that_is_not_an_object_is_refused(user_client, template, context):
    response = send(user_client, recipients=["a@example.com"], template=template.pk, context=context)

    assert response.status_code == 400
    assert "context" in response.json()
    assert nothing_written()


def test_template_and_ad_hoc_content_together_are_refused(user_client, template):
    response = send(user_client, recipients=["a@example.com"], template=template.pk, subject="s")

    assert response.status_code == 400
    assert "subject" in response.json()
    assert nothing_written()


def test_a_context_value_that_breaks_the_subject_line_is_refused(user_client, template):
    response = send(
        user_client, recipients=["a@example.com"], template=template.pk, context={"name": "x\r\nBcc: y", "order": "42"}
    )

    assert response.status_code == 400
    assert "line break" in response.json()["context"][0]
    assert nothing_written()


@override_settings(TEMPLATE_RENDER_MAX_CHARS=1000)
def test_a_render_that_grows_past_the_limit_is_refused(user_client, admin):
    from emailsystem.emails.tests.factories import EmailTemplateFactory

    loop = EmailTemplateFactory(body="{% for a in items %}{% for b in items %}{{ a }}{{ b }}{% endfor %}{% endfor %}")

    response = send(user_client, recipients=["a@example.com"], template=loop.pk, context={"items": list(range(100))})

    assert response.status_code == 400
    assert "longer than" in response.json()["context"][0]
    assert nothing_written()


@override_settings(SEND_MAX_RECIPIENTS=3)
def test_more_recipients_than_the_maximum_are_refused_after_deduplication(user_client):
    ok = send(user_client, recipients=["a@x.com", "b@x.com", "c@x.com", "A@X.COM"], subject="s", body="b")
    too_many = send(user_client, recipients=["a@x.com", "b@x.com", "c@x.com", "d@x.com"], subject="s", body="b")

    assert ok.status_code == 202
    assert too_many.status_code == 400
    assert "At most 3 recipients" in too_many.json()["recipients"][0]
    assert SentEmail.objects.count() == 1


def test_a_thousand_recipients_fit_in_one_send(user_client):
    recipients = [f"r{n}@example.com" for n in range(1000)]

    response = send(user_client, recipients=recipients, subject="s", body="b")

    assert response.status_code == 202
    assert Delivery.objects.count() == 1000


def test_malformed_json_is_refused(user_client):
    response = user_client.post(URL, '{"recipients": [', content_type="application/json")

    assert response.status_code == 400
    assert nothing_written()


@override_settings(REQUEST_MAX_BYTES=2048, ATTACHMENTS_MAX_BYTES=0)
def test_a_body_over_the_size_limit_gets_413(user_client):
    payload = json.dumps({"recipients": ["a@example.com"], "subject": "s", "body": "x" * 4096})

    response = user_client.post(URL, payload, content_type="application/json")

    assert response.status_code == 413
    assert "2048 bytes" in response.json()["detail"]
    assert nothing_written()


def test_unicode_and_idn_addresses_are_accepted(user_client):
    response = send(user_client, recipients=["anna@bücher.example"], subject="Grüße ✉", body="Привет")

    assert response.status_code == 202
    assert SentEmail.objects.get().subject == "Grüße ✉"


def test_the_browsable_api_html_form_sends_to_addresses_separated_by_commas_or_lines(user_client, template):
    response = user_client.post(
        URL,
        {
            "recipients": "a@example.com, b@example.com\r\nc@example.com",
            "template": str(template.pk),
            "context": '{"name": "Ada", "order": "42"}',
            "subject": "",
            "body": "",
            "html_body": "",
        },
        format="multipart",
    )

    assert response.status_code == 202, response.json()
    assert [r["email"] for r in response.json()["recipients"]] == ["a@example.com", "b@example.com", "c@example.com"]
    assert SentEmail.objects.get().subject == "Hello Ada"


def test_the_raw_data_prefill_with_blank_ad_hoc_fields_and_a_template_is_accepted(user_client, template):
    response = send(
        user_client,
        recipients=["a@example.com"],
        template=template.pk,
        context={"name": "Ada", "order": "42"},
        subject="",
        body="",
        html_body="",
    )

    assert response.status_code == 202, response.json()


def test_an_ad_hoc_send_with_a_null_template_and_context_is_accepted(user_client):
    response = send(user_client, recipients=["a@example.com"], template=None, context=None, subject="s", body="b")

    assert response.status_code == 202, response.json()


@pytest.mark.parametrize("key", ["k" * 256, "   ", "a\x00b"], ids=["too-long", "blank", "nul"])
def test_a_bad_idempotency_key_is_refused(user_client, key):
    response = user_client.post(
        URL, {"recipients": ["a@example.com"], "subject": "s", "body": "b"}, format="json", HTTP_IDEMPOTENCY_KEY=key
    )

    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()
    assert nothing_written()


def test_json_nested_too_deeply_for_the_parser_is_400(user_client):
    response = user_client.post(URL, "[" * 200_000 + "]" * 200_000, content_type="application/json")

    assert response.status_code == 400
    assert "nested too deeply" in response.json()["detail"]
    assert nothing_written()


def test_a_context_nested_past_the_limit_is_refused(user_client, template):
    context = {"name": "Ada"}
    for _ in range(40):
        context = {"inner": context}

    response = send(user_client, recipients=["a@example.com"], template=template.pk, context=context)

    assert response.status_code == 400
    assert "levels deep" in response.json()["context"][0]
    assert nothing_written()


@pytest.mark.parametrize(
    "context", [{"name": "Ada", "other": "x\u0000y"}, {"name": "Ada", "k\u0000": 1}, {"name": ["a", {"b": "\u0000"}]}]
)
def test_a_context_with_a_nul_character_is_refused(user_client, template, context):
    response = send(user_client, recipients=["a@example.com"], template=template.pk, context=context)

    assert response.status_code == 400
    assert "NUL" in response.json()["context"][0]
    assert nothing_written()


@pytest.mark.parametrize(
    ("body", "context"),
    [
        ("{% for x in items %}{{ x }}{% endfor %}", {"items": 5}),
        ("{{ n|divisibleby:0 }}", {"n": 4}),
        ("{{ items|first }}", {"items": 5}),
    ],
    ids=["for-over-a-number", "divide-by-zero", "first-of-a-number"],
)
def test_a_context_the_template_cannot_render_is_refused(user_client, body, context):
    from emailsystem.emails.tests.factories import EmailTemplateFactory

    template = EmailTemplateFactory(body=body)

    response = send(user_client, recipients=["a@example.com"], template=template.pk, context={"name": "A", **context})

    assert response.status_code == 400
    assert "cannot be rendered with this context" in response.json()["context"][0]
    assert nothing_written()
