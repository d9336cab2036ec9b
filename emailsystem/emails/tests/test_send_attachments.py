"""A send's `attachments`: validated, stored with the email, shown without content, and delivered to
SendGrid (its `attachments`) or the .eml folder (MIME parts), the same for every recipient."""

import base64
import email
import email.policy
import json

import pytest
from django.test import override_settings

from emailsystem.emails.models import Attachment, OutboxMessage, SentEmail
from emailsystem.emails.tests.admin_pages import logged_in
from emailsystem.emails.tests.delivering import deliver_queued

pytestmark = pytest.mark.django_db
URL = "/api/v1/emails/sent-email/"
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 4
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100


PATHLIKE = "a filename holds no path separators, control characters, CR, LF or NUL."


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


ATTACHMENTS = [
    {"filename": "invoice.pdf", "content": b64(PDF)},
    {"filename": "logo.png", "content": b64(PNG), "disposition": "inline", "content_id": "logo"},
]


def send(client, **fields):
    body = {
        "recipients": ["a@example.com", "b@example.com"],
        "subject": "Your invoice",
        "body": "Attached.",
        "html_body": '<p>Attached.</p><img src="cid:logo">',
        **fields,
    }
    return client.post(URL, body, format="json")


def test_sendgrid_receives_the_attachments_bytes_filename_and_type_for_every_recipient(user_client, fake, settings):
    response = send(user_client, attachments=ATTACHMENTS)
    assert response.status_code == 202, response.json()

    deliver_queued(fake=fake, settings=settings)

    [request] = fake.requests
    assert request.status == 202
    assert len(request.body["personalizations"]) == 2  # one request: each recipient gets the same files
    pdf = {"filename": "invoice.pdf", "type": "application/pdf", "disposition": "attachment"}
    png = {"filename": "logo.png", "type": "image/png", "disposition": "inline", "content_id": "logo"}
    assert request.body["attachments"] == [{**pdf, "content": b64(PDF)}, {**png, "content": b64(PNG)}]


def test_in_embedded_mode_each_recipients_eml_file_carries_the_attachments_as_mime_parts(
    user_client, settings, tmp_path
):
    send(user_client, attachments=ATTACHMENTS)

    deliver_queued(settings=settings, folder=tmp_path)

    files = sorted(tmp_path.rglob("*.eml"))
    assert len(files) == 2
    for path in files:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        parts = list(message.iter_attachments())
        assert [(p.get_filename(), p.get_content_type(), p.get_content_disposition()) for p in parts] == [
            ("invoice.pdf", "application/pdf", "attachment"),
            ("logo.png", "image/png", "inline"),
        ]
        assert [p.get_payload(decode=True) for p in parts] == [PDF, PNG]
        assert parts[1]["Content-ID"] == "<logo>"


def test_the_log_and_the_admin_show_each_attachment_without_its_content(user_client, admin):
    email_id = send(user_client, attachments=ATTACHMENTS).json()["id"]
    pdf = {"filename": "invoice.pdf", "type": "application/pdf", "size": len(PDF), "disposition": "attachment"}
    png = {"filename": "logo.png", "type": "image/png", "size": len(PNG), "disposition": "inline"}
    expected = [{**pdf, "content_id": ""}, {**png, "content_id": "logo"}]

    detail = user_client.get(f"{URL}{email_id}/").json()
    [listed] = user_client.get(URL).json()["results"]
    assert detail["attachments"] == expected
    assert listed["attachments"] == expected
    assert b64(PDF) not in json.dumps(detail) + json.dumps(listed)
    page = logged_in(admin).get(f"/admin/emails/sentemail/{email_id}/change/").content.decode()
    assert "invoice.pdf" in page and "application/pdf" in page
    assert b64(PDF)[:40] not in page


@pytest.mark.parametrize(
    ("attachment", "errors"),
    [
        ({"filename": "a/b.pdf"}, {"filename": [f"'a/b.pdf': {PATHLIKE}"]}),
        ({"filename": "a\\b.pdf"}, {"filename": [f"'a\\\\b.pdf': {PATHLIKE}"]}),
        ({"filename": "a\r\nb.pdf"}, {"filename": [f"'a\\r\\nb.pdf': {PATHLIKE}"]}),
        ({"filename": "setup.EXE"}, {"filename": ["'setup.EXE': executable files (.exe) are refused."]}),
        ({"filename": "run.js"}, {"filename": ["'run.js': executable files (.js) are refused."]}),
        ({"filename": "app.jar."}, {"filename": ["'app.jar.': executable files (.jar) are refused."]}),
        (
            {"filename": "x.bin", "type": "application/x-msdownload"},
            {"type": ["'x.bin': executable types (application/x-msdownload) are refused."]},
        ),
        ({"content": "not base64!"}, {"content": ["Not valid base64."]}),
        ({"content": ""}, {"content": ["This field may not be blank."]}),
        ({"type": "text/plain\r\nBcc: x"}, {"type": ["Enter a MIME type such as application/pdf (no parameters)."]}),
        ({"disposition": "inline"}, {"content_id": ["Required for an inline attachment."]}),
        ({"disposition": "sideways"}, {"disposition": ['"sideways" is not a valid choice.']}),
    ],
)  # fmt: skip
def test_a_bad_attachment_is_a_400_naming_the_field_and_index_and_nothing_is_written(user_client, attachment, errors):
    good = {"filename": "ok.txt", "content": b64(b"ok")}
    response = send(user_client, attachments=[good, {**good, **attachment}])

    assert response.status_code == 400
    assert response.json() == {"attachments": {"1": errors}}
    assert not SentEmail.objects.exists()
    assert not Attachment.objects.exists()
    assert not OutboxMessage.objects.exists()


@override_settings(ATTACHMENTS_MAX_BYTES=1000)
def test_attachments_over_the_total_limit_are_a_400_and_nothing_is_written(user_client):
    half = {"filename": "half.bin", "content": b64(b"x" * 501)}

    response = send(user_client, attachments=[half, {**half, "filename": "other.bin"}])

    assert response.status_code == 400
    assert response.json() == {"attachments": ["Attachments total 1002 bytes once decoded; at most 1000 per send."]}
    assert not SentEmail.objects.exists()


@override_settings(REQUEST_MAX_BYTES=2048, ATTACHMENTS_MAX_BYTES=8192)
def test_the_send_endpoint_takes_a_body_big_enough_for_its_attachments_while_others_keep_the_limit(user_client):
    big = {"filename": "big.bin", "content": b64(b"y" * 6000)}
    body = json.dumps({"recipients": ["a@example.com"], "subject": "s", "body": "b", "attachments": [big]})

    assert len(body) > 2048
    assert user_client.post(URL, body, content_type="application/json").status_code == 202
    assert user_client.post("/api/v1/users/login/", body, content_type="application/json").status_code == 413
    over = json.dumps({"recipients": ["a@example.com"], "subject": "s", "body": "b" * 20000})
    assert user_client.post(URL, over, content_type="application/json").status_code == 413
