"""The JSON log lines every process writes, and the filter that keeps secrets out of them."""

import io
import json
import logging

import pytest

from emailsender import logs


@pytest.fixture
def capture():
    """A logger wired exactly as `logs.configure` wires the root logger, writing to a buffer."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(logs.RequestIdFilter())
    handler.addFilter(logs.SecretMaskFilter())
    logger = logging.getLogger("test.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)


def test_a_line_is_one_json_object_with_time_level_logger_message_and_extra_fields(capture):
    logger, lines = capture
    logger.info("sent %d", 3, extra={"message_id": "email-1.outbox-2", "email_id": 1})
    [line] = lines()
    assert line["level"] == "info" and line["logger"] == "test.logs" and line["msg"] == "sent 3"
    assert line["message_id"] == "email-1.outbox-2" and line["email_id"] == 1
    assert line["ts"].endswith("+00:00")


def test_the_request_id_of_the_current_context_is_added_unless_the_record_has_one(capture):
    logger, lines = capture
    token = logs.current_request_id.set("req-42")
    try:
        logger.info("inside")
        logger.info("explicit", extra={"request_id": "other"})
    finally:
        logs.current_request_id.reset(token)
    logger.info("outside")
    inside, explicit, outside = lines()
    assert inside["request_id"] == "req-42" and explicit["request_id"] == "other" and "request_id" not in outside


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b", "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"),
        ("header Bearer abcdefghijklmnop0123 refused", "abcdefghijklmnop0123"),
        ("key SG.abcdefghijklmnopqrstuv.ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefg", "SG.abcdefghijkl"),
        ("connecting to amqp://guest:hunter2secret@rabbit:5672/", "hunter2secret"),
        ('body {"email": "a@example.com", "password": "plum-orchard-lantern-7"}', "plum-orchard-lantern-7"),
        ("GET /login?username=ada&password=plum-orchard-7&next=/", "plum-orchard-7"),
        ("settings api_key=live-key-123 loaded", "live-key-123"),
    ],
)
def test_secrets_in_messages_are_masked(capture, text, secret):
    logger, lines = capture
    logger.warning("%s", text)
    [line] = lines()
    assert secret not in line["msg"] and "***" in line["msg"]


def test_secret_extra_fields_and_tracebacks_are_masked_but_ordinary_fields_are_kept(capture):
    logger, lines = capture
    try:
        raise ValueError("could not log in with password=plum-orchard-lantern-7")
    except ValueError:
        logger.exception(
            "failed",
            extra={"api_key": "SG.x", "headers": {"Authorization": "Token abc"}, "recipient_count": 3},
        )
    [line] = lines()
    assert line["api_key"] == "***" and line["headers"] == {"Authorization": "***"} and line["recipient_count"] == 3
    assert "plum-orchard-lantern-7" not in line["exc"] and "ValueError" in line["exc"]


def test_the_plain_format_is_human_readable_and_masked_too():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter_for("plain"))
    handler.addFilter(logs.SecretMaskFilter())
    record = logging.makeLogRecord({"name": "x", "levelname": "INFO", "levelno": 20, "msg": "token=abc12345 ok"})
    record.email_id = 7
    handler.handle(record)
    text = stream.getvalue()
    assert not text.startswith("{") and "INFO x token=*** ok" in text and "email_id=7" in text
