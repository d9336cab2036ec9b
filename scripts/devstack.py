"""The local stack: the Procfile's processes and the fake SendGrid as children of this process.

One place for what `make run-stack` (scripts/run_stack.py), the benchmarks (bench/), the
fault injection (chaos/) and the pipeline tests (emailsystem/emails/tests/pipeline.py) share:
the Procfile, free ports, the stack's environment, starting and stopping its processes.
It never imports Django or the sender: each process is started as deployed, from its
Procfile command, with `python` on PATH being this interpreter.
"""

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

import psycopg2
from psycopg2 import sql

from emailsystem.database_url import database_config

ROOT = Path(__file__).resolve().parent.parent


def procfile() -> dict[str, str]:
    """The Procfile's processes, name -> command, in its order."""
    entries = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, command = line.split(":", 1)
            entries[name.strip()] = command.strip()
    return entries


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fake_sendgrid_command(port: int, *options: str) -> str:
    """The command line of the fake SendGrid server on `port` (emailsender/testing/fake_sendgrid.py)."""
    return " ".join([sys.executable, "-m", "emailsender.testing.fake_sendgrid", "--port", str(port), *options])


def ensure_database(url: str) -> None:
    """Create the stack's database on its PostgreSQL server if it does not exist yet."""
    config = database_config(url)
    admin = psycopg2.connect(
        dbname="postgres",
        user=config["USER"],
        password=config["PASSWORD"],
        host=config["HOST"],
        port=config["PORT"],
        # target_session_attrs: with several hosts, the database is created on the primary.
        **config.get("OPTIONS", {}),
    )
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [config["NAME"]])
        if cursor.fetchone() is None:
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(config["NAME"])))
    admin.close()


def with_this_python(env: Mapping[str, str]) -> dict[str, str]:
    """`env` with this interpreter's directory first on PATH (the Procfile says `python`) and
    unbuffered output, so each line reaches its log as it is written."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return {**env, "PATH": path, "PYTHONUNBUFFERED": "1"}


def stack_environment(
    *, database_url: str, rabbitmq_url: str, fake_port: int, web_port: int, **settings: str
) -> dict[str, str]:
    """What every process of a local stack runs with: the production settings (DEBUG off, a fresh
    secret key), plain HTTP on 127.0.0.1, the fake SendGrid on `fake_port`; `settings` adds or
    overrides variables (QUEUE_PREFIX, LOG_LEVEL...)."""
    env = dict(os.environ)
    env.pop("DJANGO_DEBUG", None)
    env.update(
        DATABASE_URL=database_url,
        RABBITMQ_URL=rabbitmq_url,
        SENDGRID_API_KEY="SG.fake-local-key",
        SENDGRID_API_HOST=f"http://127.0.0.1:{fake_port}",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(40),
        DJANGO_SETTINGS_MODULE="emailsystem.settings",
        DJANGO_HTTPS="0",  # plain HTTP on 127.0.0.1
        PORT=str(web_port),
    )
    env.update(settings)
    return with_this_python(env)


def wait_for_http(url: str, timeout: float = 60) -> None:
    """Return once `url` answers a GET with a 2xx; raise RuntimeError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 (127.0.0.1, the stack's own)
                return
        except (OSError, urllib.error.URLError):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer within {timeout}s") from None
            time.sleep(0.3)


def rss_mb(pid: int) -> float:
    """Resident memory of one process in MB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


class Process:
    """One child in a session of its own (so a signal reaches gunicorn's workers too), its output
    in the file `log`, or, without one, on this process's stdout with the name before each line.

    A string command is a Procfile command line, run by bash; a sequence runs as it is.
    """

    def __init__(self, name: str, command: str | Sequence[str], env: Mapping[str, str], log: Path | None) -> None:
        self.name = name
        self.log_path = log
        argv = ["bash", "-c", f"exec {command}"] if isinstance(command, str) else list(command)
        if log is None:
            self.popen = self._spawn(argv, env, subprocess.PIPE)
            threading.Thread(target=self._prefix_lines, daemon=True, name=f"{name}-output").start()
        else:
            with log.open("ab") as output:
                self.popen = self._spawn(argv, env, output)

    @staticmethod
    def _spawn(argv: list[str], env: Mapping[str, str], output: IO[bytes] | int) -> subprocess.Popen:
        return subprocess.Popen(
            argv, cwd=ROOT, env=dict(env), stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def _prefix_lines(self) -> None:
        assert self.popen.stdout is not None
        for line in iter(self.popen.stdout.readline, b""):
            sys.stdout.write(f"{self.name:>7} | {line.decode(errors='replace')}")
            sys.stdout.flush()

    def terminate(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds; its exit code."""
        self.terminate()
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        return self.popen.returncode

    def kill(self) -> None:
        """SIGKILL the process and its children at once, as the kernel's OOM killer or a node loss would."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)

    def output(self) -> str:
        """What it has written so far (processes with a log file)."""
        return self.log_path.read_text(errors="replace") if self.log_path is not None else ""

    def worker_pids(self) -> list[int]:
        """The processes doing the work: gunicorn's workers, or the process itself."""
        return children(self.popen.pid) or [self.popen.pid]


class Stack:
    """Start and stop the stack's processes by role (a Procfile name, or "fake").

    Each process logs to `<logs>/<role>.log` (`<role>-2.log` for the second of a role, and so
    on); without `logs`, to this process's stdout. With `sample_rss`, a thread keeps each
    role's peak resident memory per process in `peak_rss`.
    """

    def __init__(self, env: Mapping[str, str], logs: Path | None = None, *, sample_rss: bool = False) -> None:
        self.env = dict(env)
        self.logs = logs
        self.commands = procfile()
        self.running: dict[str, list[Process]] = {}
        self.started: dict[str, int] = {}
        self.peak_rss: dict[str, float] = {}
        self._stop = threading.Event()
        if logs is not None:
            logs.mkdir(parents=True, exist_ok=True)
        if sample_rss:
            threading.Thread(target=self._sample, daemon=True, name="rss-sampler").start()

    def start(
        self, role: str, command: str | Sequence[str] | None = None, env: Mapping[str, str] | None = None
    ) -> Process:
        """Start `role` with its Procfile command (or `command`) in the stack's environment (or `env`)."""
        self.started[role] = self.started.get(role, 0) + 1
        count = self.started[role]
        log = None if self.logs is None else self.logs / (f"{role}.log" if count == 1 else f"{role}-{count}.log")
        process = Process(role, command or self.commands[role], self.env if env is None else env, log)
        self.running.setdefault(role, []).append(process)
        return process

    def start_fake(self, port: int, *options: str) -> Process:
        """The fake SendGrid on `port` (options: e.g. --no-bodies)."""
        return self.start("fake", fake_sendgrid_command(port, *options))

    def exited(self) -> list[str]:
        """The roles of processes that have exited."""
        return [role for role, processes in self.running.items() if any(p.popen.poll() is not None for p in processes)]

    def stop(self, role: str) -> None:
        for process in self.running.pop(role, []):
            process.stop()

    def stop_all(self, timeout: float = 30) -> None:
        """SIGTERM every process at once, then wait for them all (SIGKILL past `timeout` seconds)."""
        processes = [process for role in list(self.running) for process in self.running.pop(role)]
        for process in processes:
            process.terminate()
        deadline = time.monotonic() + timeout
        for process in processes:
            process.stop(timeout=max(0.1, deadline - time.monotonic()))
        self._stop.set()

    def diagnostics(self, chars: int = 1500) -> str:
        """The last `chars` characters of each running process's output."""
        return "\n".join(
            f"--- {process.name}\n{process.output()[-chars:]}"
            for processes in self.running.values()
            for process in processes
        )

    def _sample(self) -> None:
        while not self._stop.is_set():
            for role, processes in list(self.running.items()):
                for process in processes:
                    for pid in process.worker_pids():
                        self.peak_rss[role] = max(self.peak_rss.get(role, 0.0), rss_mb(pid))
            time.sleep(0.25)
