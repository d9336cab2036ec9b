from django.apps import AppConfig


class EmailsConfig(AppConfig):
    name = "emailsystem.emails"
    label = "emails"
    verbose_name = "Emails"

    def ready(self) -> None:
        # Django's place for wiring: these import models, which are not ready when apps.py loads.
        from emailsystem.emails import checks  # noqa: F401  (registers the system checks)
        from emailsystem.emails.verification import verification_email_on_request
        from emailsystem.users.signals import email_verification_requested

        email_verification_requested.connect(verification_email_on_request, dispatch_uid="emails.verification")
