from django.apps import AppConfig


class OutboundConfig(AppConfig):
    name = "emailsystem.outbound"
    label = "outbound"
    verbose_name = "Outbound webhooks"
