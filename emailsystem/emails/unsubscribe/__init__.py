"""One-click unsubscribe (RFC 8058; docs/sending/unsubscribe.md): the signed links the work message
carries (links.py), what following one does (services.py), and the page at /u/<token> (views.py)."""
