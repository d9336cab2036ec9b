"""Which lane a request's work goes to: the normal lane, or the bulk lane that large requests
share so they never queue in front of small ones (docs/sender/fairness.md)."""

from django.conf import settings

from emailsystem.emails.models import Lane


def lane_for(*, recipients: int) -> Lane:
    """The bulk lane for a request (a send, a batch, an admin's requeue) that hands at least
    BULK_LANE_MIN_RECIPIENTS recipients to the sender at once; the normal lane otherwise."""
    return Lane.BULK if recipients >= settings.BULK_LANE_MIN_RECIPIENTS else Lane.NORMAL
