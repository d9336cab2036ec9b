"""Signals the users app sends for other apps to act on.

`users` never imports `emails` (the architecture's direction: sending depends on accounts, not
the reverse). The emails app connects a receiver here that mails the link through the normal
pipeline (emails.verification), so the link travels like any other email.
"""

from django.dispatch import Signal

# Sent with `user` (whose current address the link proves) and `url` (the absolute link), inside
# the transaction that asked for it: a receiver's failure undoes the request.
email_verification_requested = Signal()
