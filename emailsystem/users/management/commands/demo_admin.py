"""Create (or recover) the local demo admin that `make run` prints. For development machines only."""

import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from emailsystem.users.services import user_email_verified_set

DEMO_EMAIL = "admin@example.com"
DEMO_USERNAME = "admin"


class Command(BaseCommand):
    help = "Ensure a demo superuser exists and print its credentials (kept in var/demo-admin.txt)."
    # `make run` runs the system checks with migrate and runserver; once more here would print
    # each warning a third time.
    requires_system_checks: list[str] = []

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("demo_admin is for local development (DJANGO_DEBUG=1); use createsuperuser elsewhere.")
        credentials = Path(settings.BASE_DIR) / "var" / "demo-admin.txt"
        # The file outlives the database: deleting db.sqlite3 recreates the admin with the same
        # password, and a password changed in the database is set back to the file's.
        password = credentials.read_text().strip() if credentials.exists() else ""
        if not password:
            password = secrets.token_urlsafe(12)
            credentials.parent.mkdir(parents=True, exist_ok=True)
            credentials.write_text(password + "\n")
            credentials.chmod(0o600)
        users = get_user_model().objects
        user = users.filter(email=DEMO_EMAIL).first()
        if user is None:
            # A new superuser's address is verified (users.models.UserManager.create_superuser).
            users.create_superuser(email=DEMO_EMAIL, username=DEMO_USERNAME, password=password)
        else:
            if not user.check_password(password):
                user.set_password(password)
                user.save(update_fields=["password"])
            if not user.email_verified:  # it sends at once, as a new one does
                user_email_verified_set(user=user, verified=True)
        self.stdout.write(f"Demo admin: {DEMO_EMAIL} / {password}")
