"""`python manage.py relay`: publish outbox rows and outbound webhook messages whose immediate
publish failed (Procfile: relay)."""

import logging
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, close_old_connections

from emailsender.liveness import LivenessFile
from emailsystem.emails.delivery.config import sender_settings
from emailsystem.emails.delivery.outbox import outbox_relay
from emailsystem.emails.delivery.shutdown import run_until_signalled
from emailsystem.outbound.publishing import webhook_messages_relay

logger = logging.getLogger(__name__)

# How long an idle relay waits before looking again: rows reach it after a failed publish, or
# when a scheduled send comes due, so this bounds how late a scheduled send is handed on.
POLL_SECONDS = 1.0


def relay_loop(stop: threading.Event) -> None:
    """Relay until `stop` is set; every pass and wait touches LIVENESS_FILE (emailsender/liveness.py)."""
    liveness = LivenessFile(sender_settings().liveness_file)
    while not stop.is_set():
        liveness.touch()
        try:
            busy = outbox_relay()
            busy += webhook_messages_relay()
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
