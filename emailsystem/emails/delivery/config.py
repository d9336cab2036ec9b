"""The sender's settings as the web side sees them: the same variables, read once per call."""

import os

from django.conf import settings

from emailsender.settings import Settings


def sender_settings() -> Settings:
    """emailsender's Settings from the environment, with the values Django settings own.

    Django's copies win so that one source (settings, overridable in tests) decides the
    broker, the SendGrid target and the queue names for both the publisher and embedded mode.
    """
    environ = {
        **os.environ,
        "RABBITMQ_URL": settings.RABBITMQ_URL,
        "SENDGRID_API_KEY": settings.SENDGRID_API_KEY,
        "SENDGRID_API_HOST": settings.SENDGRID_API_HOST,
        "OUTBOX_DIR": settings.OUTBOX_DIR,
        "QUEUE_PREFIX": settings.QUEUE_PREFIX,
    }
    return Settings.from_env(environ, require_broker=False)
