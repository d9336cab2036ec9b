"""The sender stays independent of Django and of a running broker."""

from __future__ import annotations

import subprocess
import sys

from emailsender.tests.support import REPO_ROOT


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)


def test_sender_never_imports_django():
    result = run_python(
        "import emailsender.consumer, emailsender.handler, emailsender.__main__, sys; "
        "assert not any(m.startswith('django') for m in sys.modules), sorted(m for m in sys.modules if 'django' in m)"
    )
    assert result.returncode == 0, result.stderr


def test_modules_the_web_side_imports_have_no_side_effects():
    # No connection, no threads, no files, no logging configuration at import time.
    result = run_python(
        "import logging, os, threading\n"
        "before = set(os.listdir('.'))\n"
        "import emailsender.topology, emailsender.messages, emailsender.handler, emailsender.clients\n"
        "assert threading.active_count() == 1\n"
        "assert not logging.getLogger().handlers\n"
        "assert set(os.listdir('.')) == before\n"
    )
    assert result.returncode == 0, result.stderr
