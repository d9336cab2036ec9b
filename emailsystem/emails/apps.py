from django.apps import AppConfig


class EmailsConfig(AppConfig):
    name = "emailsystem.emails"
    label = "emails"
    verbose_name = "Emails"

    def ready(self) -> None:
        # Django's place for wiring: these import models, which are not ready when apps.py loads.
        from emailsystem.core.readiness import ReadinessCheck, readiness_check_add
        from emailsystem.emails import checks  # noqa: F401  (registers the system checks)
        from emailsystem.emails.delivery.broker import broker_readiness
        from emailsystem.emails.verification import verification_email_on_request
        from emailsystem.users.signals import email_verification_requested

        # Not critical: sends made while the broker is down wait in the outbox and the relay
        # publishes them later, so the API stays useful. Failing readiness here would turn a
        # broker outage into a full API outage.
        readiness_check_add(ReadinessCheck("broker", broker_readiness, critical=False))
        email_verification_requested.connect(verification_email_on_request, dispatch_uid="emails.verification")
