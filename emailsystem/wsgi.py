"""WSGI entry point for gunicorn (see Procfile)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emailsystem.settings")

application = get_wsgi_application()

# Without RABBITMQ_URL, this process also delivers (embedded mode); with it, this is a no-op.
from emailsystem.emails.delivery.embedded import start_embedded_worker  # noqa: E402

start_embedded_worker()
