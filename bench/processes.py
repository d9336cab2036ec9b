"""The benchmark's stack: Procfile processes and the fake SendGrid as children, with peak RSS sampling."""

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from scripts.run_stack import procfile

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / "bench" / "results" / "logs"


def local_stack_environment(
    *, database_url: str, rabbitmq_url: str, queue_prefix: str, fake_port: int, web_port: int, log_level: str
) -> dict[str, str]:
    """What every process of a local stack (bench, chaos) runs with: the production settings
    (DEBUG off, a fresh secret), plain HTTP on 127.0.0.1, and the fake SendGrid on `fake_port`."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        RABBITMQ_URL=rabbitmq_url,
        QUEUE_PREFIX=queue_prefix,
        SENDGRID_API_KEY=f"SG.{queue_prefix}-fake-key",
        SENDGRID_API_HOST=f"http://127.0.0.1:{fake_port}",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(40),
        DJANGO_SETTINGS_MODULE="emailsystem.settings",
        DJANGO_HTTPS="0",  # plain HTTP on 127.0.0.1
        PORT=str(web_port),
        LOG_LEVEL=log_level,
        PYTHONUNBUFFERED="1",
    )
    env.pop("DJANGO_DEBUG", None)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


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
    def __init__(self, name: str, command: str, env: dict[str, str], logs: Path = LOGS) -> None:
        logs.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = logs / f"{name}.log"
        self.popen = subprocess.Popen(
            ["bash", "-c", f"exec {command}"],
            cwd=ROOT,
            env=env,
            stdout=self.log_path.open("a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self, timeout: float = 30) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)

    def kill(self) -> None:
        """SIGKILL the process and its children at once, as the kernel's OOM killer or a node loss would."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)

    def worker_pids(self) -> list[int]:
        """The processes doing the work: gunicorn's workers, or the process itself."""
        return children(self.popen.pid) or [self.popen.pid]


class Stack:
    """Start and stop the stack's processes; a sampler thread keeps each role's peak RSS per process."""

    def __init__(self, env: dict[str, str], logs: Path = LOGS) -> None:
        self.env = env
        self.logs = logs
        self.commands = procfile()
        self.running: dict[str, list[Process]] = {}
        self.peak_rss: dict[str, float] = {}
        self._stop = threading.Event()
        threading.Thread(target=self._sample, daemon=True, name="rss-sampler").start()

    def start(self, role: str, command: str | None = None, env: dict[str, str] | None = None) -> Process:
        command = command or self.commands[role]
        process = Process(role, command, {**self.env, **(env or {})}, self.logs)
        self.running.setdefault(role, []).append(process)
        return process

    def start_fake(self, port: int) -> Process:
        return self.start("fake", f"{sys.executable} -m emailsender.testing.fake_sendgrid --port {port}")

    def stop(self, role: str) -> None:
        for process in self.running.pop(role, []):
            process.stop()

    def stop_all(self) -> None:
        for role in list(self.running):
            self.stop(role)
        self._stop.set()

    def _sample(self) -> None:
        while not self._stop.is_set():
            for role, processes in list(self.running.items()):
                for process in processes:
                    for pid in process.worker_pids():
                        self.peak_rss[role] = max(self.peak_rss.get(role, 0.0), rss_mb(pid))
            time.sleep(0.25)
