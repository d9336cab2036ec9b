"""The work message's optional parts: what travels, what SendGrid's payload carries, and the MIME parts."""

import email
import email.policy
import json

import pytest

from emailsender.handler import build_payload
from emailsender.messages import InvalidMessage, WorkMessage, WorkRecipient, encode_work, parse_work
from emailsender.mime import build_mime
from emailsender.options import Attachment, Options
from emailsender.testing.sendgrid_contract import validate

PDF = b"%PDF-1.4\x00\xff binary"
PNG = b"\x89PNG\r\n\x1a\n..."
OPTIONS = Options(
    tags=("invoice", "eu"),
    metadata=(("order", "42"),),
    sandbox=True,
    attachments=(
        Attachment("invoice.pdf", "application/pdf", "attachment", None, PDF),
        Attachment("logo.png", "image/png", "inline", "logo", PNG),
    ),
)


def message(options: Options = OPTIONS) -> WorkMessage:
    return WorkMessage(
        email_id=1,
        from_email="from@example.com",
        reply_to=None,
        subject="Hi",
        text="Body",
        html='<img src="cid:logo">',
        deliveries=(WorkRecipient(10, "a@example.com"), WorkRecipient(11, "b@example.com")),
        options=options,
    )


def test_the_options_survive_the_work_message_round_trip():
    assert parse_work(encode_work(message())).options == OPTIONS


def test_a_message_without_options_is_encoded_as_before():
    assert set(message(Options()).to_dict()) == {
        "v", "email_id", "from_email", "reply_to", "subject", "text", "html", "deliveries"
    }  # fmt: skip


def test_the_payload_carries_categories_custom_args_sandbox_and_attachments_as_sendgrid_takes_them():
    payload = build_payload(message())

    assert validate(payload) == []
    assert payload["categories"] == ["invoice", "eu"]
    assert payload["custom_args"] == {"order": "42"}
    assert payload["mail_settings"] == {"sandbox_mode": {"enable": True}}
    pdf = {"filename": "invoice.pdf", "type": "application/pdf", "disposition": "attachment"}
    png = {"filename": "logo.png", "type": "image/png", "disposition": "inline", "content_id": "logo"}
    assert payload["attachments"] == [
        {**pdf, "content": "JVBERi0xLjQA/yBiaW5hcnk="},
        {**png, "content": "iVBORw0KGgouLi4="},
    ]


@pytest.mark.parametrize(
    "extra",
    [
        {"tags": "invoice"},
        {"tags": ["a"] * 2},
        {"metadata": {"k": 1}},
        {"sandbox": "yes"},
        {"attachments": [{"filename": "a", "type": "text/plain", "disposition": "attachment", "content": "!!"}]},
        {"attachments": [{"filename": "a", "type": "text/plain", "disposition": "inline", "content": "YQ=="}]},
    ],
)
def test_malformed_options_make_the_message_invalid(extra):
    body = json.dumps({**message(Options()).to_dict(), **extra}).encode()

    with pytest.raises(InvalidMessage):
        parse_work(body)


def test_the_mime_builder_adds_each_attachment_as_a_part_after_the_bodies():
    raw = build_mime(
        from_email="from@example.com",
        to=["a@example.com"],
        subject="Hi",
        text="Body",
        html='<img src="cid:logo">',
        attachments=OPTIONS.attachments,
    )

    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed.get_content_type() == "multipart/mixed"
    assert parsed.get_body(("plain",)).get_content().strip() == "Body"
    parts = list(parsed.iter_attachments())
    assert [(p.get_filename(), p.get_content_type(), p.get_content_disposition()) for p in parts] == [
        ("invoice.pdf", "application/pdf", "attachment"),
        ("logo.png", "image/png", "inline"),
    ]
    assert [p.get_payload(decode=True) for p in parts] == [PDF, PNG]
    assert parts[1]["Content-ID"] == "<logo>"
