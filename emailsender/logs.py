"""One JSON object per log line, with secrets masked, for every process of the service.

The sender configures itself with `configure()`; the Django processes (web, results, relay)
use the same formatter and filter through settings.LOGGING, so every line in the cluster has
the same shape: `ts`, `level`, `logger`, `msg`, then the record's extra fields
(`request_id`, `message_id`, `email_id`, ...), which the log pipeline can filter on.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

# Attributes every LogRecord has; anything else on a record came from `extra=` and is logged as a field.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}

# The id of the API request being served (web) or of the request a message came from. Set by
# emailsystem.core.middleware; `RequestIdFilter` copies it onto every record made meanwhile.
current_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

MASK = "***"
# Field names whose values are secrets wherever they appear: as `extra=` keys, in key=value or
# "key": "value" text, in query strings.
_SECRET_NAME = r"(?:password|passwd|secret|token|api[_-]?key|apikey|authorization|sessionid|csrftoken|cookie)"  # noqa: S105 (a pattern of names, not a password)
_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # A whole Authorization header value, scheme and credential, however short the credential:
    # "Authorization: Bearer SG.x" (the key=value rule below would mask only the scheme).
    (re.compile(r"""(?i)\b(authorization\s*[=:]\s*)(?!["'])(?:[A-Za-z]+\s+)?[^\s&,;"']+"""), rf"\1{MASK}"),
    # Authorization header values: "Token abc", "Bearer abc", "Basic abc".
    (re.compile(r"(?i)\b(token|bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{8,}"), rf"\1\2{MASK}"),
    # SendGrid API keys: SG.<22>.<43>, anywhere.
    (re.compile(r"\bSG\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), MASK),
    # Passwords in URLs: amqp://user:secret@host, postgres://user:secret@host.
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@/\s]+@"), rf"\1{MASK}@"),
    # "password": "x"  /  'token': 'x'  (JSON bodies, dict reprs).
    (re.compile(rf"""(?i)(["']{_SECRET_NAME}[\w-]*["']\s*:\s*)(["'])(?:\\.|(?!\2).)*\2"""), rf"\1\2{MASK}\2"),
    # password=x  /  api_key: x  /  Authorization: Token x  (query strings, headers, key=value logs).
    (re.compile(rf"(?i)\b({_SECRET_NAME}[\w-]*)(\s*[=:]\s*)(?![\"'])[^\s&,;]+"), rf"\1\2{MASK}"),
)
_SECRET_KEY = re.compile(rf"(?i){_SECRET_NAME}")
# Every pattern above needs one of these words; most lines (an access log line, "sent") have
# none, and one search is far cheaper than six substitutions on every line.
_MAY_HOLD_A_SECRET = re.compile(rf"(?i){_SECRET_NAME}|bearer|basic|SG\.|://")


def mask_secrets(text: str) -> str:
    """`text` with API keys, tokens, passwords and Authorization values replaced by ***."""
    if not _MAY_HOLD_A_SECRET.search(text):
        return text
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _mask_value(key: str, value: Any) -> Any:
    if _SECRET_KEY.search(key):
        return MASK
    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, dict):
        return {k: _mask_value(str(k), v) for k, v in value.items()}
    return value


class SecretMaskFilter(logging.Filter):
    """Masks secrets in a record's message and extra fields before any handler formats it.

    Attached to handlers (not loggers), so it also sees records that propagate from
    libraries' loggers. The message is rendered once here and frozen, masked, into `msg`.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args or "%" in str(record.msg) or not isinstance(record.msg, str):
            try:
                message = record.getMessage()
            except (TypeError, ValueError):  # a bad format string: keep the raw parts, masked
                message = f"{record.msg} {record.args}"
            record.msg, record.args = message, None
        record.msg = mask_secrets(record.msg)
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD and not key.startswith("_"):
                record.__dict__[key] = _mask_value(key, value)
        return True


class RequestIdFilter(logging.Filter):
    """Adds `request_id` from `current_request_id` to records that do not carry one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            request_id = current_request_id.get()
            if request_id is not None:
                record.request_id = request_id
        return True


@contextlib.contextmanager
def request_id_bound(request_id: str | None) -> Iterator[None]:
    """Log with `request_id` (None: without one) while handling work that came from that request."""
    token = current_request_id.set(request_id)
    try:
        yield
    finally:
        current_request_id.reset(token)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exc"] = mask_secrets(self.formatException(record.exc_info))
        return json.dumps(line, default=str, ensure_ascii=False)


class PlainFormatter(logging.Formatter):
    """Human-readable lines for a developer's terminal (LOG_FORMAT=plain), extras appended as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extras = [
            f"{key}={value}"
            for key, value in record.__dict__.items()
            if key not in _STANDARD and not key.startswith("_")
        ]
        if record.exc_text:
            record.exc_text = mask_secrets(record.exc_text)
        return f"{text} {' '.join(extras)}" if extras else text


def formatter_for(log_format: str) -> logging.Formatter:
    """`json` (the default, for production) or `plain`."""
    return PlainFormatter() if log_format == "plain" else JsonFormatter()


def configure(level: str = "INFO", log_format: str = "json") -> None:
    """Send masked lines (JSON unless `log_format` is "plain") to stderr; pika's chatter stays at WARNING."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter_for(log_format))
    handler.addFilter(RequestIdFilter())
    handler.addFilter(SecretMaskFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("pika").setLevel(logging.WARNING)


def redact_library_loggers() -> None:
    """Mask secrets on the loggers of the libraries that see the API key, whatever handler. Idempotent.

    python_http_client logs every request's headers, SendGrid's API key among them, at DEBUG.
    A logger filter masks them before any handler (a test's caplog, a handler that some
    process configured without SecretMaskFilter) can see them.
    """
    logger = logging.getLogger("python_http_client.client")
    if not any(isinstance(existing, SecretMaskFilter) for existing in logger.filters):
        logger.addFilter(SecretMaskFilter())
