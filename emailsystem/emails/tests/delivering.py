"""Deliver what a test's sends queued, in embedded mode, to the fake SendGrid or the .eml folder."""

from pathlib import Path

from emailsender.clients import Client, EmlFolderClient, SendGridClient
from emailsystem.emails.delivery.config import sender_settings
from emailsystem.emails.delivery.embedded import outbox_process


def deliver_queued(*, fake=None, settings, folder: Path | None = None) -> int:
    """Run the embedded worker's step once over every due outbox row; how many rows it handled.

    With `fake`: to the fake SendGrid through the real client; with `folder`: as .eml files.
    """
    client: Client
    if fake is not None:
        settings.SENDGRID_API_KEY = "SG.test-key"
        settings.SENDGRID_API_HOST = fake.url
        config = sender_settings()
        assert config.sendgrid_api_key is not None
        client = SendGridClient(config.sendgrid_api_key, config.sendgrid_api_host, timeout=5)
    else:
        assert folder is not None, "deliver_queued needs `fake` or `folder`"
        settings.OUTBOX_DIR = str(folder)
        config = sender_settings()
        client = EmlFolderClient(folder)
    return outbox_process(client=client, config=config)
