from django.apps import AppConfig


class EmailsConfig(AppConfig):
    name = "emailsystem.emails"
    label = "emails"
    verbose_name = "Emails"
