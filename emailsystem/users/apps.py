from django.apps import AppConfig


class UsersConfig(AppConfig):
    name = "emailsystem.users"
    label = "users"
    verbose_name = "Users"
