"""`python manage.py results`: apply the sender's delivery results to the database (Procfile: results)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from emailsystem.emails.delivery.config import sender_settings
from emailsystem.emails.delivery.results_consumer import ResultsConsumer
from emailsystem.emails.delivery.shutdown import run_until_signalled


class Command(BaseCommand):
    help = "Consume delivery results from RabbitMQ and apply them to per-recipient statuses."

    def handle(self, *args: Any, **options: Any) -> None:
        if not sender_settings().rabbitmq_url:
            raise CommandError("RABBITMQ_URL is not set: without a broker, the web process applies results itself.")
        run_until_signalled(lambda stop: ResultsConsumer(stop=stop).run(), "results")
