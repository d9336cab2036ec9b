"""Liveness: the sender's loop touches LIVENESS_FILE while it passes or waits to reconnect, the
check fails once it stops, and `python -m emailsender.liveness` is a cheap exec probe."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from emailsender.consumer import Sender
from emailsender.liveness import LivenessFile, liveness_problem
from emailsender.settings import Settings
from emailsender.testing.broker import sender_env
from emailsender.testing.polling import wait_for
from emailsender.tests.support import REPO_ROOT

# Small enough that a stuck loop shows within seconds; three touch intervals above the
# healthy age, so a loaded test machine does not make a passing loop look stuck.
MAX_AGE = 3.0
UNREACHABLE_BROKER = "amqp://guest:guest@127.0.0.1:1/"


def backdate(path, seconds: float = 3600) -> None:
    """Make the file look last touched `seconds` ago."""
    then = time.time() - seconds
    os.utime(path, (then, then))


def touched_again(path) -> bool:
    """Polled after `backdate`: true once something touched the file again."""
    return time.time() - os.stat(path).st_mtime < MAX_AGE


def probe(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "emailsender.liveness"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


# --- the check -------------------------------------------------------------------------------


def test_a_fresh_file_passes_and_a_stale_or_missing_one_fails(tmp_path):
    path = tmp_path / "liveness"
    assert "no liveness file" in liveness_problem(str(path), 60)

    path.touch()
    assert liveness_problem(str(path), 60) is None

    backdate(path, 61)
    assert "stuck" in liveness_problem(str(path), 60)
    assert liveness_problem(str(path), 120) is None


def test_touching_creates_the_file_and_without_a_path_touches_nothing(tmp_path):
    path = tmp_path / "liveness"
    LivenessFile(str(path)).touch()
    assert liveness_problem(str(path), 1) is None

    LivenessFile(None).touch()
    assert list(tmp_path.iterdir()) == [path]


def test_a_wait_touches_the_file_and_ends_when_stop_is_set(tmp_path):
    path = tmp_path / "liveness"
    liveness, stop = LivenessFile(str(path)), threading.Event()
    waiter = threading.Thread(target=liveness.wait, args=(stop, 60))
    waiter.start()
    wait_for(path.exists, what="the wait touched the file")
    backdate(path)
    wait_for(lambda: touched_again(path), what="the wait touched the file again")
    stop.set()
    waiter.join(5)
    assert not waiter.is_alive()


def test_an_unwritable_file_is_logged_once_not_raised(tmp_path, caplog):
    liveness = LivenessFile(str(tmp_path / "missing-dir" / "liveness"))
    for _ in range(3):
        liveness._next_touch = 0.0  # past the interval: every call tries
        liveness.touch()
    assert [r.getMessage() for r in caplog.records] == ["liveness file not written"]


def test_the_probe_exits_0_1_or_2_and_imports_neither_django_nor_pika(tmp_path):
    path = tmp_path / "liveness"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVENESS_")}
    unset = probe(env)
    assert unset.returncode == 2 and "LIVENESS_FILE is not set" in unset.stderr

    env |= {"LIVENESS_FILE": str(path), "LIVENESS_MAX_AGE_SECONDS": "60"}
    assert probe(env).returncode == 1
    path.touch()
    assert probe(env).returncode == 0, probe(env).stderr
    backdate(path, 61)
    stale = probe(env)
    assert stale.returncode == 1 and "stuck" in stale.stderr
    assert probe(env | {"LIVENESS_MAX_AGE_SECONDS": "soon"}).returncode == 2

    imported = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\nfrom emailsender import liveness\nliveness.main([])\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'pika', 'sendgrid')))",
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert imported.stdout.strip() == "[]", imported.stderr


# --- the sender's loop -----------------------------------------------------------------------


@pytest.mark.rabbitmq
def test_the_consuming_loop_touches_the_file(broker, fake, start_sender, tmp_path):
    path = tmp_path / "liveness"
    start_sender(broker.settings(fake, liveness_file=str(path), liveness_max_age_seconds=MAX_AGE))
    wait_for(path.exists, what="the loop touched the file")
    backdate(path)
    wait_for(lambda: touched_again(path), what="the loop touched the file again")


@pytest.mark.rabbitmq
def test_a_loop_blocked_in_a_call_stops_touching_and_the_check_fails(broker, fake, start_sender, tmp_path):
    path = str(tmp_path / "liveness")
    running = start_sender(broker.settings(fake, liveness_file=path, liveness_max_age_seconds=MAX_AGE))
    wait_for(lambda: liveness_problem(path, MAX_AGE) is None, what="a passing check")
    release = threading.Event()
    entered = threading.Event()

    def blocked() -> None:  # a call that never returns, in place of one the loop makes every pass
        entered.set()
        release.wait()

    running.sender._start_pending = blocked
    assert entered.wait(5)
    try:
        wait_for(lambda: liveness_problem(path, MAX_AGE), timeout=MAX_AGE + 10, what="the check to fail")
    finally:
        release.set()
    wait_for(lambda: liveness_problem(path, MAX_AGE) is None, what="the check to pass once the loop moves")


def test_waiting_to_reconnect_to_a_broker_that_is_down_keeps_touching(tmp_path):
    """A broker outage is retried, not stuck: the backoff between attempts touches the file."""
    path = tmp_path / "liveness"
    settings = Settings(
        rabbitmq_url=UNREACHABLE_BROKER,
        outbox_dir=str(tmp_path / "outbox"),
        liveness_file=str(path),
        liveness_max_age_seconds=MAX_AGE,
    )
    sender = Sender(settings)
    thread = threading.Thread(target=sender.run, daemon=True)
    thread.start()
    try:
        wait_for(path.exists, what="the sender touched the file")
        for _ in range(2):  # across more than one reconnect attempt (backoff 0.5-1 s, then 1-2 s)
            backdate(path)
            wait_for(lambda: touched_again(path), what="the backoff touched the file again")
        assert sender.stats["connections"] == 0
    finally:
        sender.stop()
        thread.join(10)
        sender.close()
    assert not thread.is_alive()


@pytest.mark.rabbitmq
@pytest.mark.slow
def test_the_probe_fails_on_a_frozen_sender_process_and_passes_again_when_it_resumes(
    broker, fake, spawn_sender, tmp_path
):
    settings = broker.settings(fake, liveness_file=str(tmp_path / "liveness"), liveness_max_age_seconds=MAX_AGE)
    process = spawn_sender(settings)
    env = sender_env(settings)
    assert probe(env).returncode == 0
    process.send_signal(signal.SIGSTOP)  # every thread stops: the loop makes no pass
    try:
        stuck = wait_for(
            lambda: (result := probe(env)).returncode == 1 and result, timeout=MAX_AGE + 15, what="the probe to fail"
        )
        assert "stuck" in stuck.stderr
    finally:
        process.send_signal(signal.SIGCONT)
    wait_for(lambda: probe(env).returncode == 0, what="the probe to pass again")
