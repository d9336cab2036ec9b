"""Bad input on every write endpoint: a clear 4xx naming the field, and nothing changed.

Each write endpoint is described once (WRITES) with a request that would succeed; the tests
spoil one field at a time (NUL, line breaks, a number for a string, nesting, size) and
compare every table the API writes before and after.
"""

import json
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import override_settings
from rest_framework.authtoken.models import Token

from emailsystem.conftest import token_client
from emailsystem.emails.models import Delivery, EmailTemplate, IdempotencyRecord, OutboxMessage, Recipient, SentEmail
from emailsystem.emails.tests.factories import EmailTemplateFactory, sent_email
from emailsystem.users.models import User
from emailsystem.users.tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.django_db

TEMPLATES = "/api/v1/emails/email-template/"
SENDS = "/api/v1/emails/sent-email/"


@dataclass(frozen=True)
class Write:
    name: str
    method: str
    path: str  # "{template}" is replaced by an existing template's id
    who: str  # "anonymous", "user" or "admin"
    payload: dict[str, Any]
    string_fields: tuple[str, ...]  # every field that takes text
    single_line_fields: tuple[str, ...]  # fields where a line break must be refused


WRITES = [
    Write(
        "register",
        "post",
        "/api/v1/users/register/",
        "anonymous",
        {"email": "ada@example.com", "username": "ada", "password": "plum-orchard-lantern-7"},
        ("email", "username", "password"),
        ("email", "username"),
    ),
    Write(
        "login",
        "post",
        "/api/v1/users/login/",
        "anonymous",
        {"username": "someone@example.com", "password": DEFAULT_PASSWORD},
        ("username", "password"),
        (),
    ),
    Write(
        "template-create",
        "post",
        TEMPLATES,
        "admin",
        {"name": "welcome", "subject": "Hi {{ name }}", "body": "Hello {{ name }}", "html_body": "<p>Hi</p>"},
        ("name", "subject", "body", "html_body"),
        ("name", "subject"),
    ),
    Write(
        "template-update",
        "patch",
        TEMPLATES + "{template}/",
        "admin",
        {"name": "renamed", "subject": "New {{ name }}", "body": "New body", "html_body": "<p>New</p>"},
        ("name", "subject", "body", "html_body"),
        ("name", "subject"),
    ),
    Write(
        "send",
        "post",
        SENDS,
        "user",
        {"recipients": ["carol@example.com"], "subject": "Lunch?", "body": "Noon.", "html_body": "<p>Noon.</p>"},
        ("recipients", "subject", "body", "html_body"),
        ("recipients", "subject"),
    ),
]
WRITE_IDS = [write.name for write in WRITES]


@pytest.fixture
def call(api_client, user, admin):
    """Send `payload` to `write` as its caller; the template it may edit and a login user exist."""
    User.objects.filter(pk=user.pk).update(email="someone@example.com", verified_email="someone@example.com")
    template = EmailTemplateFactory(name="existing", subject="Old {{ name }}", body="Old body")
    clients = {"anonymous": api_client, "user": token_client(user), "admin": token_client(admin)}

    def call(write: Write, payload: Any, **extra: Any) -> Any:
        client = clients[write.who]
        path = write.path.format(template=template.pk)
        body = payload if isinstance(payload, str) else json.dumps(payload)
        return getattr(client, write.method)(path, body, content_type="application/json", **extra)

    return call


def snapshot() -> dict[str, Any]:
    """Every row the API's writes touch, so a refused request provably changed nothing."""
    models = (User, Token, EmailTemplate, SentEmail, Delivery, Recipient, OutboxMessage, IdempotencyRecord)
    return {model.__name__: sorted(model.objects.values_list(flat=False)) for model in models} | {
        "passwords": sorted(User.objects.values_list("password", flat=True))
    }


def spoil(payload: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    """`payload` with `field` set to `value` (recipients: the first address)."""
    if field == "recipients":
        return {**payload, field: [value]}
    return {**payload, field: value}


def test_each_write_succeeds_as_described(call):
    # The baseline the refusals below are measured against.
    expected = {"register": 201, "login": 200, "template-create": 201, "template-update": 200, "send": 202}
    for write in WRITES:
        assert call(write, write.payload).status_code == expected[write.name], write.name


@pytest.mark.parametrize("write", WRITES, ids=WRITE_IDS)
def test_a_nul_in_any_string_field_is_refused_naming_the_field(call, write):
    for field in write.string_fields:
        before = snapshot()
        original = write.payload[field][0] if field == "recipients" else write.payload[field]

        response = call(write, spoil(write.payload, field, original[:2] + "\x00" + original[2:]))

        assert response.status_code == 400, (field, response.content)
        assert field in response.json(), (field, response.json())
        assert snapshot() == before, field


@pytest.mark.parametrize("write", WRITES, ids=WRITE_IDS)
def test_a_line_break_in_a_single_line_field_is_refused(call, write):
    for field in write.single_line_fields:
        for line_break in ("\r\n", "\n", "\r"):
            before = snapshot()
            original = write.payload[field][0] if field == "recipients" else write.payload[field]
            injected = f"{original}{line_break}Bcc: everyone@example.com"

            response = call(write, spoil(write.payload, field, injected))

            assert response.status_code == 400, (field, line_break)
            assert field in response.json(), (field, response.json())
            assert snapshot() == before


def test_a_login_with_a_line_break_is_an_ordinary_failed_login(call):
    write = WRITES[WRITE_IDS.index("login")]

    before = snapshot()

    response = call(write, {**write.payload, "username": "someone@example.com\r\nX: y"})

    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["Unable to log in with the provided credentials."]}
    assert snapshot() == before


def test_bodies_keep_their_line_breaks_exactly(call):
    write = WRITES[WRITE_IDS.index("send")]
    body = "Line one\r\nLine two\nLine three\rLine four"

    response = call(write, {**write.payload, "body": body, "html_body": "<p>a</p>\n<p>b</p>"})

    assert response.status_code == 202
    stored = SentEmail.objects.get()
    assert (stored.body, stored.html_body) == (body, "<p>a</p>\n<p>b</p>")


@pytest.mark.parametrize("write", WRITES, ids=WRITE_IDS)
def test_a_number_or_object_where_text_belongs_is_refused(call, write):
    for field in write.string_fields:
        for value in (12345678, {"a": 1}):
            before = snapshot()

            response = call(write, spoil(write.payload, field, value))

            assert response.status_code == 400, (field, value, response.content)
            assert field in response.json(), (field, response.json())
            assert snapshot() == before


@pytest.mark.parametrize("write", WRITES, ids=WRITE_IDS)
def test_json_nested_deeper_than_the_parser_allows_is_400(call, write):
    before = snapshot()

    response = call(write, '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}")

    assert response.status_code == 400
    assert "nested too deeply" in response.json()["detail"]
    assert snapshot() == before


@override_settings(REQUEST_MAX_BYTES=2048, ATTACHMENTS_MAX_BYTES=0)  # the send's allowance for attachments: none
@pytest.mark.parametrize("write", WRITES, ids=WRITE_IDS)
def test_a_body_over_the_limit_is_413(call, write):
    before = snapshot()
    field = write.string_fields[-1]

    response = call(write, spoil(write.payload, field, "x" * 4096))

    assert response.status_code == 413
    assert response.json()["detail"] == "Request body is larger than the limit of 2048 bytes."
    assert snapshot() == before


def test_a_context_nested_too_deeply_for_json_in_a_form_is_400(user_client):
    template = EmailTemplateFactory()
    before = snapshot()

    response = user_client.post(
        SENDS,
        {"recipients": "a@example.com", "template": str(template.pk), "context": "[" * 100_000 + "]" * 100_000},
        format="multipart",
    )

    assert response.status_code == 400
    assert "levels deep" in response.json()["context"][0]
    assert snapshot() == before


# -- recipients --------------------------------------------------------------------------------


def test_one_more_recipient_than_the_documented_maximum_is_a_clear_400(user_client, settings):
    recipients = [f"r{n}@example.com" for n in range(settings.SEND_MAX_RECIPIENTS + 1)]

    response = user_client.post(SENDS, {"recipients": recipients, "subject": "s", "body": "b"}, format="json")

    assert response.status_code == 400
    assert response.json() == {"recipients": ["At most 1000 recipients per send (got 1001)."]}
    assert not SentEmail.objects.exists() and not Recipient.objects.exists()


def test_an_idn_domain_is_accepted_and_stored_in_its_one_ascii_spelling(user_client):
    response = user_client.post(
        SENDS, {"recipients": ["Anna@Bücher.Example", "bob@xn--bcher-kva.example"], "subject": "s", "body": "b"}
    )

    assert response.status_code == 202
    assert [r["email"] for r in response.json()["recipients"]] == [
        "anna@xn--bcher-kva.example",
        "bob@xn--bcher-kva.example",
    ]
    assert sorted(Recipient.objects.values_list("email", flat=True)) == [
        "anna@xn--bcher-kva.example",
        "bob@xn--bcher-kva.example",
    ]


def test_a_non_ascii_local_part_is_refused_with_a_message_that_says_so(user_client):
    response = user_client.post(SENDS, {"recipients": ["ñandú@example.com"], "subject": "s", "body": "b"})

    assert response.status_code == 400
    assert "before the @ must be ASCII" in response.json()["recipients"]["0"][0]
    assert not SentEmail.objects.exists()


def test_unicode_subject_and_bodies_are_stored_exactly(user_client):
    content = {"subject": "Grüße ✉ 你好 \U0001f600", "body": "Привет\u200b", "html_body": "<p>مرحبا</p>"}

    response = user_client.post(SENDS, {"recipients": ["a@example.com"], **content}, format="json")

    assert response.status_code == 202
    stored = SentEmail.objects.values("subject", "body", "html_body").get()
    assert stored == content


# -- found by the schema fuzzer (test_fuzz_api.py) ----------------------------------------------


@pytest.mark.parametrize("bad_id", ["1.5", "abc", "-1", "1e3", "%20"])
def test_a_malformed_id_is_a_json_404_and_anonymous_requests_for_it_are_401(api_client, user_client, bad_id):
    for path in (f"{TEMPLATES}{bad_id}/", f"{SENDS}{bad_id}/"):
        response = user_client.get(path)
        assert response.status_code == 404
        assert set(response.json()) == {"detail"}

    assert api_client.delete(f"{TEMPLATES}{bad_id}/").status_code == 401
    assert api_client.get(f"{SENDS}{bad_id}/").status_code == 401
    assert EmailTemplate.objects.count() == 0


def test_an_unknown_api_url_is_a_json_404(client):
    response = client.get("/api/v1/no-such-thing/")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


@pytest.mark.parametrize("page", ["", "last", "1.0", " 1"])
def test_a_page_that_is_not_a_positive_integer_is_404(user_client, user, page):
    sent_email(user=user)

    response = user_client.get(SENDS, {"page": page})

    assert response.status_code == 404
    assert response.json() == {"detail": "Invalid page."}


@pytest.mark.parametrize("page_size", ["", "ten", "0", "-5", "2.5"])
def test_a_page_size_that_is_not_a_positive_integer_is_400(api_client, page_size):
    response = api_client.get(TEMPLATES, {"page_size": page_size})

    assert response.status_code == 400
    assert response.json() == {"page_size": ["page_size must be a positive integer."]}


def test_a_page_size_above_the_maximum_counts_as_the_maximum(api_client):
    EmailTemplateFactory.create_batch(3)

    assert len(api_client.get(TEMPLATES, {"page_size": "100000"}).json()["results"]) == 3


# -- the log's time filters ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "moment",
    [
        "9999-12-31T23:59:59-23:59",  # an offset PostgreSQL refuses, and past year 9999 in UTC
        "0001-01-01T00:00:00+14:00",  # before year 1 in UTC
        "9999-12-31",  # a date-only end_time includes the whole day: past the last datetime
    ],
)
@pytest.mark.parametrize("name", ["start_time", "end_time"])
def test_a_moment_out_of_range_is_a_400_on_its_filter(user_client, user, name, moment):
    sent_email(user=user)

    response = user_client.get(SENDS, {name: moment})

    assert response.status_code == 400
    assert response.json() == {name: ["Enter a moment between the years 2 and 9998 (in UTC)."]}


def test_an_offset_postgresql_would_refuse_is_read_in_utc(user_client, user):
    sent_email(user=user)

    after = user_client.get(SENDS, {"start_time": "2000-01-01T00:00:00-23:00"})
    before = user_client.get(SENDS, {"end_time": "2000-01-01T00:00:00-23:00"})

    assert (after.status_code, after.json()["count"]) == (200, 1)
    assert (before.status_code, before.json()["count"]) == (200, 0)


def test_bodies_keep_their_leading_and_closing_whitespace(user_client, admin_client_api):
    body, html_body = "\n  Hi,\n\nsee you.\n", "<p>Hi</p>\n"

    sent = user_client.post(
        "/api/v1/emails/sent-email/",
        {"recipients": ["a@example.com"], "subject": "s", "body": body, "html_body": html_body},
        format="json",
    )
    template = admin_client_api.post(
        "/api/v1/emails/email-template/",
        {"name": "kept", "subject": "s", "body": body, "html_body": html_body},
        format="json",
    )

    assert sent.status_code == 202, sent.json()
    assert template.status_code == 201, template.json()
    email = SentEmail.objects.get(pk=sent.json()["id"])
    assert (email.body, email.html_body) == (body, html_body)
    assert (template.json()["body"], template.json()["html_body"]) == (body, html_body)
