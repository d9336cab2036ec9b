"""Admin for templates, the sent-email log and its deliveries. The log is read-only: no way to forge a send here.

One module per area; importing them registers their ModelAdmins (Django's autodiscover
imports this package).
"""

from emailsystem.emails.admin import addresses, deliveries, sent_emails, templates

__all__ = ["addresses", "deliveries", "sent_emails", "templates"]
