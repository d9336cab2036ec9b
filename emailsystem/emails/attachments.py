"""Writes and reads of a send's attachments: stored with the email, read back for the sender and the log."""

from typing import Any

from emailsender.options import Attachment as WorkAttachment
from emailsystem.core.plain_sql import rows_insert
from emailsystem.emails.models import Attachment


def attachments_insert(*, sent_email_id: int, attachments: list[dict[str, Any]]) -> tuple[WorkAttachment, ...]:
    """Store a send's attachments (validated: filename, type, disposition, content_id, content
    bytes) in one statement; returned as the sender takes them, so the request's own publish
    needs no query back."""
    if not attachments:
        return ()
    rows_insert(
        Attachment,
        [
            {
                "sent_email_id": sent_email_id,
                "position": position,
                "filename": item["filename"],
                "type": item["type"],
                "disposition": item["disposition"],
                "content_id": item.get("content_id") or "",
                "size": len(item["content"]),
                "content": item["content"],
            }
            for position, item in enumerate(attachments)
        ],
    )
    return tuple(_work_attachment(item) for item in attachments)


def attachments_for_work(*, sent_email_id: int) -> tuple[WorkAttachment, ...]:
    """An email's attachments with their content, in order, as the sender takes them (one query)."""
    rows = (
        Attachment.objects.filter(sent_email_id=sent_email_id)
        .order_by("position")
        .values("filename", "type", "disposition", "content_id", "content")
    )
    return tuple(_work_attachment({**row, "content": bytes(row["content"])}) for row in rows)


def attachments_for_work_many(*, sent_email_ids: list[int]) -> dict[int, tuple[WorkAttachment, ...]]:
    """attachments_for_work for many emails in one query: email id -> its attachments (() for none)."""
    grouped: dict[int, list[WorkAttachment]] = {email_id: [] for email_id in sent_email_ids}
    rows = (
        Attachment.objects.filter(sent_email_id__in=sent_email_ids)
        .order_by("sent_email_id", "position")
        .values("sent_email_id", "filename", "type", "disposition", "content_id", "content")
    )
    for row in rows:
        grouped[row["sent_email_id"]].append(_work_attachment({**row, "content": bytes(row["content"])}))
    return {email_id: tuple(items) for email_id, items in grouped.items()}


def attachments_by_email(*, email_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The log's view of these emails' attachments, grouped by email: never the content (one query)."""
    grouped: dict[int, list[dict[str, Any]]] = {email_id: [] for email_id in email_ids}
    rows = (
        Attachment.objects.filter(sent_email_id__in=email_ids)
        .order_by("sent_email_id", "position")
        .values("sent_email_id", *ATTACHMENT_LOG_FIELDS)
    )
    for row in rows:
        grouped[row.pop("sent_email_id")].append(row)
    return grouped


ATTACHMENT_LOG_FIELDS = ("filename", "type", "size", "disposition", "content_id")


def _work_attachment(item: dict[str, Any]) -> WorkAttachment:
    return WorkAttachment(
        filename=item["filename"],
        type=item["type"],
        disposition=item["disposition"],
        content_id=item.get("content_id") or None,
        content=item["content"],
    )
