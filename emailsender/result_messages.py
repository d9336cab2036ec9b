"""The result message contract (version 1; messages.py describes it): what the sender publishes
for each outcome, and what the web side's results process reads back."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from emailsender.messages import VERSION, InvalidMessage, is_id, message_body

RESULT_OUTCOMES = ("sent", "failed", "retrying")
# The web side stores attempts as 16-bit integers: a larger one would fail to apply on every redelivery.
_MAX_RESULT_ATTEMPT = 32767


@dataclass(frozen=True)
class ResultMessage:
    email_id: int
    deliveries: tuple[int, ...]
    outcome: str
    attempt: int
    reason: str
    status_code: int | None
    at: datetime
    # Which provider accepted the deliveries (optional: results without it stay valid v1).
    provider: str | None = None


def build_result(
    *,
    email_id: int,
    delivery_ids: tuple[int, ...] | list[int],
    outcome: str,
    attempt: int,
    reason: str = "",
    status_code: int | None = None,
    at: datetime | None = None,
    provider: str | None = None,
) -> dict[str, Any]:
    """A result message as a dict; `outcome` is "sent", "failed" or "retrying"."""
    if outcome not in RESULT_OUTCOMES:
        raise ValueError(f"outcome must be one of {RESULT_OUTCOMES}, got {outcome!r}")
    return {
        "v": VERSION,
        "email_id": email_id,
        "deliveries": list(delivery_ids),
        "outcome": outcome,
        "attempt": attempt,
        "reason": reason,
        "status_code": status_code,
        "at": (at or datetime.now(UTC)).isoformat(),
    } | ({"provider": provider} if provider else {})


def encode_result(result: dict[str, Any]) -> bytes:
    """The UTF-8 JSON body of a result built by `build_result`."""
    return message_body(result)


def parse_result(body: bytes) -> ResultMessage:
    """Decode and validate a result message (for the web side's results process)."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError, AttributeError) as exc:
        raise InvalidMessage(f"body is not UTF-8 JSON: {str(exc)[:120]}") from None
    return result_message(data)


def result_message(data: Any) -> ResultMessage:
    """Validate a decoded result (what `build_result` makes; the embedded worker passes it directly)."""
    if not isinstance(data, dict) or data.get("v") != VERSION:
        raise InvalidMessage("not a version 1 result object")
    deliveries = data.get("deliveries")
    status_code = data.get("status_code")
    if (
        not is_id(data.get("email_id"))
        or not isinstance(deliveries, list)
        or not all(is_id(d) for d in deliveries)
        or data.get("outcome") not in RESULT_OUTCOMES
        or not isinstance(data.get("attempt"), int)
        or not 0 <= data["attempt"] <= _MAX_RESULT_ATTEMPT
        or not isinstance(data.get("reason"), str)
        or not (status_code is None or (isinstance(status_code, int) and 100 <= status_code <= 599))
        or not isinstance(data.get("at"), str)
        or not (data.get("provider") is None or (isinstance(data["provider"], str) and len(data["provider"]) <= 20))
    ):
        raise InvalidMessage("result fields are missing, of the wrong type or out of range")
    try:
        at = datetime.fromisoformat(data["at"])
        if at.tzinfo is None:
            raise ValueError("no UTC offset")
        at = at.astimezone(UTC)  # PostgreSQL refuses offsets beyond ±15:59 that Python parses
    except (ValueError, OverflowError):
        raise InvalidMessage("result 'at' is not an ISO 8601 timestamp with an offset") from None
    return ResultMessage(
        email_id=data["email_id"],
        deliveries=tuple(deliveries),
        outcome=data["outcome"],
        attempt=data["attempt"],
        reason=_storable_text(data["reason"]),
        status_code=status_code,
        at=at,
        provider=data.get("provider") or None,
    )


def _storable_text(text: str) -> str:
    """`text` as PostgreSQL can store it: no NUL, no lone surrogate (a reason is never refused
    for its characters, or the outcome it carries would be lost)."""
    return text.replace("\x00", "").encode("utf-8", errors="replace").decode("utf-8")
