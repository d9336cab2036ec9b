"""Settings for the test suite: the real settings, with test-only defaults for required variables.

Tests run against PostgreSQL (the production database) unless DATABASE_URL says otherwise.
"""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "test-suite-only-not-a-secret")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/emailsystem")
# Background threads (dispatcher, embedded worker) then close their connection after each
# batch, so nothing holds the test database open when it is dropped.
os.environ.setdefault("DATABASE_CONN_MAX_AGE", "0")
# The test client speaks plain HTTP; test_hardening.py checks the HTTPS settings separately.
os.environ.setdefault("DJANGO_HTTPS", "0")

from emailsystem.settings import *  # noqa: F403

# Hashing is deliberately slow in production; tests create many users.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
