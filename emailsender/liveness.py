"""Liveness of a worker process: its loop touches a file, and an exec probe checks the file's age.

`sender`, `results` and `relay` each touch LIVENESS_FILE on every pass of their loop and in
every wait (a reconnect backoff, the pause after a database error; the sender's loop keeps
passing through a 429 pause), so a process retrying an outage stays alive. Stuck means the
loop made no pass for LIVENESS_MAX_AGE_SECONDS: it is blocked in one call. `python -m emailsender.liveness` is the
probe: exit 0 when the file is younger than that, 1 when it is older or missing, 2 when
LIVENESS_FILE is unset or the settings are invalid.

The probe imports only this module and `emailsender.settings` (standard library only): no
Django, no pika, so a probe every few seconds costs one short Python start-up.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time

from emailsender.settings import Settings, SettingsError

log = logging.getLogger("emailsender")

# Loops pass every 0.05-1 s; touching at most once a second keeps a busy loop at one syscall a
# second and the file's age within a second of the last pass.
TOUCH_INTERVAL_SECONDS = 1.0


class LivenessFile:
    """The file one loop touches; with no path (LIVENESS_FILE unset) it touches nothing."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._next_touch = 0.0
        self._failing = False

    def touch(self) -> None:
        """Set the file's mtime to now (creating it), at most every TOUCH_INTERVAL_SECONDS.

        A file that cannot be written is logged once, not raised: the probe then fails and
        Kubernetes restarts the pod, with the reason in the log and the probe's event.
        """
        if self.path is None:
            return
        now = time.monotonic()
        if now < self._next_touch:
            return
        self._next_touch = now + TOUCH_INTERVAL_SECONDS
        try:
            try:
                os.utime(self.path)
            except FileNotFoundError:
                with open(self.path, "a"):
                    pass
        except OSError as exc:
            if not self._failing:
                log.warning("liveness file not written", extra={"path": self.path, "error": str(exc)})
            self._failing = True
            return
        self._failing = False

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        """`stop.wait(seconds)`, touching the file meanwhile; True when `stop` was set."""
        deadline = time.monotonic() + seconds
        while True:
            self.touch()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return stop.is_set()
            if stop.wait(min(remaining, TOUCH_INTERVAL_SECONDS)):
                return True


def liveness_problem(path: str, max_age_seconds: float, *, now: float | None = None) -> str | None:
    """None when `path` was touched within `max_age_seconds`, else what is wrong with it."""
    try:
        touched = os.stat(path).st_mtime
    except FileNotFoundError:
        return f"no liveness file at {path}: the loop has not started"
    except OSError as exc:
        return f"liveness file {path} unreadable: {exc}"
    age = (time.time() if now is None else now) - touched
    if age > max_age_seconds:
        return f"the loop last passed {age:.0f} s ago (limit {max_age_seconds:g} s): stuck"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m emailsender.liveness",
        description="Exit 0 when the process's loop touched LIVENESS_FILE within LIVENESS_MAX_AGE_SECONDS "
        "(default 60), 1 when not, 2 when LIVENESS_FILE is unset or the settings are invalid.",
    )
    parser.parse_args(argv)
    try:
        settings = Settings.from_env(require_broker=False)
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    if settings.liveness_file is None:
        print("LIVENESS_FILE is not set: no loop touches a file to check", file=sys.stderr)
        return 2
    problem = liveness_problem(settings.liveness_file, settings.liveness_max_age_seconds)
    if problem is not None:
        print(problem, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
