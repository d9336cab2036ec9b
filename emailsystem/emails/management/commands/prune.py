"""`python manage.py prune`: delete the records past their retention (docs/deploy/retention.md).

Run daily (manifests/base/prune: a CronJob). Prints one line per kind as it is done. A lost
connection (a failover, a restart) starts the run over on a new one, up to CONNECTION_ATTEMPTS
times; any other database error exits non-zero. Either way the batches committed before it stay deleted.
"""

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, InterfaceError, OperationalError, connection

from emailsystem.emails.retention import BATCH_ROWS, PAUSE_RATIO, Pruned, records_prune

# A failover takes seconds (docs/deploy/database-failover.md); three runs RETRY_WAIT_SECONDS
# apart outlast one. Starting over is safe: what is past retention is found again, and what was
# deleted is gone.
CONNECTION_ATTEMPTS = 3
RETRY_WAIT_SECONDS = 15.0


class Command(BaseCommand):
    help = "Delete sent emails, delivery events and other records older than their retention, in small batches."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="count what would be deleted; delete nothing")
        parser.add_argument(
            "--batch-size",
            type=int,
            default=BATCH_ROWS,
            help=f"rows per batch, each its own transaction (default {BATCH_ROWS})",
        )
        parser.add_argument(
            "--pause-ratio",
            type=float,
            default=PAUSE_RATIO,
            help=f"after each batch, wait this many times as long as it took (default {PAUSE_RATIO:g}: "
            "prune works at most a quarter of the time)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch_size"] < 1 or options["pause_ratio"] < 0:
            raise CommandError("--batch-size must be at least 1 and --pause-ratio at least 0.")
        for attempt in range(1, CONNECTION_ATTEMPTS + 1):
            try:
                records_prune(
                    dry_run=options["dry_run"],
                    batch_rows=options["batch_size"],
                    pause_ratio=options["pause_ratio"],
                    report=lambda pruned: self.stdout.write(line(pruned, dry_run=options["dry_run"])),
                )
                return
            except (OperationalError, InterfaceError) as error:
                connection.close()  # the next attempt connects again, to whichever host is the primary
                if attempt == CONNECTION_ATTEMPTS:
                    raise CommandError(f"prune stopped: the database stayed unreachable: {error}") from error
                self.stderr.write(
                    f"prune: database connection lost ({error}); starting over in {RETRY_WAIT_SECONDS:g} s"
                )
                time.sleep(RETRY_WAIT_SECONDS)
            except DatabaseError as error:
                raise CommandError(f"prune stopped by a database error: {error}") from error


def line(pruned: Pruned, *, dry_run: bool) -> str:
    """`sent emails: 1,204 deleted (accepted more than 90 days ago, none in flight), with 2,408 deliveries`."""
    text = f"{pruned.kind}: {pruned.rows:,} {'to delete' if dry_run else 'deleted'} ({pruned.rule})"
    with_rows = [f"{count:,} {model._meta.verbose_name_plural}" for model, count in pruned.with_rows.items() if count]
    if with_rows:
        text += f", with {', '.join(with_rows)}"
    if pruned.skipped_batches:
        text += f"; {pruned.skipped_batches} batch(es) skipped on a lock, left for the next run"
    return text
