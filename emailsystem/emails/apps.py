from django.apps import AppConfig


class EmailsConfig(AppConfig):
    name = "emailsystem.emails"
    label = "emails"
    verbose_name = "Emails"

    def ready(self) -> None:
        from emailsystem.emails import checks  # noqa: F401  (registers the system checks)
