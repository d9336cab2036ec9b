from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "emailsystem.core"
    label = "core"
    verbose_name = "Core"
