"""Standalone sender: consumes work messages from RabbitMQ and delivers them through SendGrid.

This package never imports Django. The web process imports `topology`, `messages`, `handler`
and `clients` for embedded mode, so those modules stay free of side effects at import time.
Its documentation is docs/sender/ (the site's "The sender" pages).
"""
