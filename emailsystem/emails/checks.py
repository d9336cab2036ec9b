"""System checks for the emails app (shown by `manage.py check`, `runserver` and `migrate`)."""

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Warning, register
from django.http.request import validate_host

from emailsystem.emails.verification import LOCAL_SYSTEM_FROM_ADDRESS, system_from_address
from emailsystem.emails.webhooks.signature import PublicKeyError, public_key_load


@register()
def sendgrid_webhook_key_check(app_configs: Any = None, **kwargs: Any) -> list[Warning | Error]:
    """Unset key: the webhook refuses everything (a warning). A key that cannot be used: an error.

    No warning in embedded local mode (DEBUG without RABBITMQ_URL, `make run`): that server listens
    on the developer's machine, where SendGrid's webhook cannot reach it, so nothing is missed.
    """
    key = settings.SENDGRID_WEBHOOK_PUBLIC_KEY
    if not key:
        if settings.DEBUG and not settings.RABBITMQ_URL:
            return []
        return [
            Warning(
                "SENDGRID_WEBHOOK_PUBLIC_KEY is not set: POST /api/v1/webhooks/sendgrid/ refuses every request "
                "with 403, so delivery events (bounces, opens, unsubscribes...) are not recorded.",
                hint="Set it to the verification key SendGrid shows under Mail Settings > Signed Event Webhook.",
                id="emails.W001",
            )
        ]
    try:
        public_key_load(key)
    except PublicKeyError as error:
        return [Error(f"SENDGRID_WEBHOOK_PUBLIC_KEY is unusable: {error}.", id="emails.E001")]
    return []


@register()
def system_from_address_check(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    """Verification links go From system_from_address(); SendGrid refuses its local default."""
    if settings.SENDGRID_API_KEY and system_from_address() == LOCAL_SYSTEM_FROM_ADDRESS:
        return [
            Warning(
                f"Verification links are sent From {LOCAL_SYSTEM_FROM_ADDRESS}, which SendGrid refuses: "
                "new users cannot verify their address.",
                hint="Set EMAIL_FROM_ADDRESS or SYSTEM_FROM_ADDRESS to a sender verified in SendGrid.",
                id="emails.W002",
            )
        ]
    return []


@register()
def public_base_url_check(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    """PUBLIC_BASE_URL is where the links mailed to people point (verification, one-click unsubscribe)."""
    if not settings.PUBLIC_BASE_URL:
        return []
    found = []
    host = urlsplit(settings.PUBLIC_BASE_URL).hostname or ""
    if not validate_host(host, settings.ALLOWED_HOSTS):
        found.append(
            Warning(
                f"PUBLIC_BASE_URL's host {host!r} is not in DJANGO_ALLOWED_HOSTS: every link mailed to people "
                "(verification, unsubscribe) is answered 400.",
                hint="Add the host to DJANGO_ALLOWED_HOSTS.",
                id="emails.W003",
            )
        )
    if settings.PUBLIC_BASE_URL.startswith("http://") and not settings.DEBUG:
        found.append(
            Warning(
                "PUBLIC_BASE_URL is http://: mailbox providers offer one-click unsubscribe only for an https:// "
                "List-Unsubscribe link (RFC 8058), so recipients of sends with `unsubscribe` do not get the button.",
                hint="Serve the service over HTTPS and set PUBLIC_BASE_URL to its https:// address.",
                id="emails.W004",
            )
        )
    return found
