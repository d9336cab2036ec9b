"""What a send service returns: plain data about the recorded email, which the view shapes into its answer.

An Idempotency-Key stores the receipts of the send it covered (`receipts_record`), so a replay
builds the same answer from the same data (`receipts_from_record`).
"""

import datetime
from dataclasses import dataclass
from typing import Any, NamedTuple


class ReceiptRecipient(NamedTuple):
    address: str
    delivery_id: int | None  # None only in receipts read from a record in the 202 answer's form, which has no ids
    status: str  # a DeliveryStatus value


@dataclass(frozen=True)
class SendReceipt:
    """One recorded email: its id, status and creation time, and each recipient's delivery, in request order."""

    email_id: int
    status: str  # an EmailStatus value
    created: datetime.datetime
    recipients: list[ReceiptRecipient]


def receipts_record(receipts: list[SendReceipt]) -> dict[str, Any]:
    """The receipts as JSON-ready data, for an idempotency record."""
    return {
        "receipts": [
            {
                "email_id": receipt.email_id,
                "status": receipt.status,
                "created": receipt.created.isoformat(),
                "recipients": [list(recipient) for recipient in receipt.recipients],
            }
            for receipt in receipts
        ]
    }


def receipts_from_record(record: dict[str, Any]) -> list[SendReceipt]:
    """The receipts a record holds.

    A record may hold a single send's 202 answer instead ({"id", "status", "created",
    "recipients": [{"email", "status"}]}): read as one receipt whose recipients have no
    delivery ids. Records expire after IDEMPOTENCY_KEY_TTL_HOURS.
    """
    if "receipts" not in record:
        return [
            SendReceipt(
                email_id=record["id"],
                status=record["status"],
                created=_parse_moment(record["created"]),
                recipients=[ReceiptRecipient(item["email"], None, item["status"]) for item in record["recipients"]],
            )
        ]
    return [
        SendReceipt(
            email_id=item["email_id"],
            status=item["status"],
            created=_parse_moment(item["created"]),
            recipients=[ReceiptRecipient(*recipient) for recipient in item["recipients"]],
        )
        for item in record["receipts"]
    ]


def _parse_moment(value: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
