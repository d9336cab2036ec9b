"""`python manage.py webhooks`: deliver outbound webhooks to users' endpoints (Procfile: webhooks)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from emailsystem.emails.delivery.config import sender_settings
from emailsystem.emails.delivery.shutdown import run_until_signalled
from emailsystem.outbound.worker import WebhooksWorker


class Command(BaseCommand):
    help = "Deliver signed outbound webhooks from their RabbitMQ queue, retrying on the configured schedule."

    def handle(self, *args: Any, **options: Any) -> None:
        if not sender_settings().rabbitmq_url:
            raise CommandError("RABBITMQ_URL is not set: outbound webhooks are delivered from RabbitMQ only.")
        run_until_signalled(lambda stop: WebhooksWorker(stop=stop).run(), "webhooks")
