from django.apps import AppConfig


class EmailsConfig(AppConfig):
    name = "emailsystem.emails"
    label = "emails"
    verbose_name = "Emails"

    def ready(self) -> None:
        # Imported once the app registry is ready, as Django requires of models and checks.
        from emailsystem.core.readiness import ReadinessCheck, readiness_check_add
        from emailsystem.emails import checks  # noqa: F401  (registers the system checks)
        from emailsystem.emails.delivery.broker import broker_readiness

        # Not critical: sends made while the broker is down wait in the outbox and the relay
        # publishes them later, so the API stays useful. Failing readiness here would turn a
        # broker outage into a full API outage.
        readiness_check_add(ReadinessCheck("broker", broker_readiness, critical=False))
