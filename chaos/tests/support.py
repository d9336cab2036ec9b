"""What the verdict tests share: a moment for the fault to begin, and a delivery row."""

import datetime

from emailsystem.emails.models import DeliveryStatus

BEGAN = 1_000.0


def row(pk: int, *, email_id: int = 1, provider: str = "sendgrid", updated: float = BEGAN) -> tuple:
    """A delivery as verdicts.check reads it: (pk, email id, status, updated, provider)."""
    return (pk, email_id, DeliveryStatus.SENT, datetime.datetime.fromtimestamp(updated, datetime.UTC), provider)
