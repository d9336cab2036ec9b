"""The order of a recipient's statuses, which makes every status update monotonic.

An update (a sender's result or a SendGrid event) only ever replaces a status by one ranked
higher, so duplicates, redeliveries and events arriving out of order never move a recipient
backwards: a `delivered` reported after an `opened` keeps `opened` (and records `delivered_at`).

Negative outcomes rank above engagement on purpose: a spam report or unsubscribe usually
follows an open or a click, and is what the sender most needs to see.
"""

from emailsystem.emails.models import DeliveryStatus as S

RANK: dict[str, int] = {
    S.QUEUED: 0,
    # The sender's verdicts; a SendGrid event proves SendGrid had it, so any event outranks them.
    S.SENT: 10,
    S.FAILED: 10,
    S.SUPPRESSED: 10,
    S.CANCELED: 10,
    S.SANDBOXED: 10,
    S.PROCESSED: 20,
    S.DEFERRED: 30,
    S.DELIVERED: 40,
    S.OPENED: 50,
    S.CLICKED: 60,
    S.BOUNCED: 70,
    S.DROPPED: 70,
    S.UNSUBSCRIBED: 80,
    S.SPAM_REPORTED: 90,
}

# For the email's derived status: recipients that reached (at least) SendGrid (sandboxed ones
# reached its sandbox)...
REACHED = frozenset(
    {S.SENT, S.SANDBOXED, S.PROCESSED, S.DEFERRED, S.DELIVERED, S.OPENED, S.CLICKED, S.UNSUBSCRIBED, S.SPAM_REPORTED}
)
# ...those whose mail server accepted the message...
DELIVERED = frozenset({S.DELIVERED, S.OPENED, S.CLICKED, S.UNSUBSCRIBED, S.SPAM_REPORTED})
# ...and those that never will.
UNREACHED = frozenset({S.FAILED, S.BOUNCED, S.DROPPED, S.SUPPRESSED, S.CANCELED})
# Delivery failures: refused by SendGrid or the receiving server. Not `suppressed`: that one
# was our own choice, never attempted (the dashboard's failing domains count these).
DELIVERY_FAILED = frozenset({S.FAILED, S.BOUNCED, S.DROPPED})


def status_later(current: str, candidate: str) -> str:
    """Whichever of the two statuses ranks higher; the current one on a tie."""
    return candidate if RANK[candidate] > RANK[current] else current
