"""Helpers for the sender's own tests: work messages, a sender on a thread, a sender process's log.

What the web's tests share with them (the broker, polling, the TCP proxy) is in emailsender/testing/.
"""

from __future__ import annotations

import json
import subprocess
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from emailsender.consumer import Sender
from emailsender.messages import WorkMessage, WorkRecipient

REPO_ROOT = Path(__file__).resolve().parents[2]

_next_id = iter(range(1, 10**9))


def next_id() -> int:
    return next(_next_id)


def work_message(deliveries: int = 1, **changes: Any) -> WorkMessage:
    """A valid work message with fresh email and delivery ids."""
    email_id = next_id()
    message = WorkMessage(
        email_id=email_id,
        from_email="alice@example.com",
        reply_to=None,
        subject=f"Subject {email_id}",
        text="Hello there",
        html=None,
        deliveries=tuple(WorkRecipient(id=next_id(), to=f"user{n}@example.com") for n in range(deliveries)),
    )
    return replace(message, **changes)


class RunningSender:
    def __init__(self, sender: Sender, thread: threading.Thread) -> None:
        self.sender = sender
        self.thread = thread
        self.exit_code: int | None = None

    def stop(self, timeout: float = 15.0) -> int | None:
        self.sender.stop()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "sender did not stop"
        self.sender.close()
        return self.exit_code


def log_lines(process: subprocess.Popen) -> list[dict[str, Any]]:
    lines = []
    for raw in process.log_path.read_text().splitlines():  # type: ignore[attr-defined]
        try:
            lines.append(json.loads(raw))
        except ValueError:
            lines.append({"msg": raw})
    return lines
