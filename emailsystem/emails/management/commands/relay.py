"""`python manage.py relay`: publish outbox rows and outbound webhook messages whose immediate
publish failed (Procfile: relay)."""

import logging
import threading
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, close_old_connections

from emailsender.liveness import LivenessFile
from emailsystem.emails.delivery.config import sender_settings
from emailsystem.emails.delivery.outbox import RelayInterrupted, outbox_hand_back, outbox_relay
from emailsystem.emails.delivery.shutdown import run_until_signalled
from emailsystem.outbound.publishing import webhook_messages_relay

logger = logging.getLogger(__name__)

# How long an idle relay waits before looking again: rows reach it after a failed publish, or
# when a scheduled send comes due, so this bounds how late a scheduled send is handed on.
POLL_SECONDS = 1.0


def relay_loop(stop: threading.Event) -> None:
    """Relay until `stop` is set; every pass and wait touches LIVENESS_FILE (emailsender/liveness.py).

    A database error closes the connection (close_old_connections drops an unusable one), so the
    next pass connects again, to the new primary after a failover. Rows a pass had claimed when
    the database failed are handed back as soon as it answers again, not after CLAIM_LEASE.
    """
    liveness = LivenessFile(sender_settings().liveness_file)
    interrupted: RelayInterrupted | None = None
    claimed_at = 0.0
    while not stop.is_set():
        liveness.touch()
        try:
            if interrupted is not None:
                outbox_hand_back(interrupted=interrupted, claimed_at=claimed_at)
                interrupted = None
            claimed_at = time.monotonic()
            busy = outbox_relay()
            busy += webhook_messages_relay()
        except RelayInterrupted as error:
            logger.exception("relay: database error after claiming rows; retrying")
            interrupted, busy = error, 0
        except DatabaseError:
            logger.exception("relay: database error; retrying")
            busy = 0
        finally:
            close_old_connections()
        if not busy:
            liveness.wait(stop, POLL_SECONDS)


class Command(BaseCommand):
    help = (
        "Publish sends and outbound webhook messages that could not be published when they were made "
        "(broker down, process died)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        if not sender_settings().rabbitmq_url:
            raise CommandError("RABBITMQ_URL is not set: embedded mode needs no relay.")
        run_until_signalled(relay_loop, "relay")
