"""A private PostgreSQL and a private RabbitMQ node in a temporary directory, for fault injection.

The machine's shared servers (5432, 5672) serve other people's tests and CI, so the chaos run
never stops them: it starts its own on free ports, stops and starts those to inject faults,
and removes them at the end. Both bind 127.0.0.1 only.
"""

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pika
import pika.exceptions
import psycopg2

from scripts.devstack import free_port


def _run(command: list[str], *, user: str | None = None, timeout: float = 60, **kwargs: Any) -> None:
    if user is not None:
        command = ["runuser", "-u", user, "--", *command]
    subprocess.run(command, check=True, timeout=timeout, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kwargs)


class PrivatePostgres:
    """initdb into a temporary directory; trust auth; TCP on a free port, its unix socket in the directory.

    PostgreSQL refuses to run as root, so as root it runs as the `postgres` user.
    """

    def __init__(self, base: Path) -> None:
        binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
        if not binaries:
            raise RuntimeError("no /usr/lib/postgresql/*/bin/initdb: install the postgresql package")
        self.bin = Path(binaries[-1]).parent
        self.dir = base / "postgres"
        self.data = self.dir / "data"
        self.port = free_port()
        self.user = "postgres" if os.geteuid() == 0 else None
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/chaos"
        # Server settings beyond the run's own (`-c name=value ...`), for one role in a pair.
        self.options = ""

    def start(self) -> None:
        if not self.data.exists():
            self.dir.mkdir(parents=True)
            if self.user:
                entry = pwd.getpwnam(self.user)
                os.chown(self.dir, entry.pw_uid, entry.pw_gid)
            _run(
                [str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
                user=self.user,
            )
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100"
        options = f"{options} {self.options}".strip()
        pg_ctl = [str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "server.log")]
        _run(
            [*pg_ctl, "-w", "-t", "60", "-o", options, "start"],
            user=self.user,
            timeout=90,
        )

    def stop(self) -> None:
        """Fast shutdown: open sessions are ended, new connections refused until start()."""
        if (self.data / "postmaster.pid").exists():
            _run(
                [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop"], user=self.user
            )

    def create_database(self) -> None:
        _run(
            [str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "chaos"],
            user=self.user,
        )


def kill_postgres(server: PrivatePostgres) -> None:
    """SIGKILL the server and every backend of it at once, as when its machine dies.

    pg_ctl starts the postmaster in a session of its own, so its process group holds the
    backends and nothing else; the stale postmaster.pid is removed so that stop() has nothing to do.
    """
    pid_file = server.data / "postmaster.pid"
    pid = int(pid_file.read_text().split()[0])
    if os.getpgid(pid) != pid:
        raise RuntimeError(f"postmaster {pid} leads no process group of its own: refusing to kill a group")
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    pid_file.unlink()


class PrivateStandby(PrivatePostgres):
    """A hot standby of `primary`: pg_basebackup -R (streaming, primary_conninfo written) into its own directory."""

    def __init__(self, base: Path, primary: PrivatePostgres) -> None:
        super().__init__(base)
        self.primary = primary
        self.dir = base / "standby"
        self.data = self.dir / "data"
        # Until the standby is back on a restarted primary (database_down), the primary's commits
        # wait for it; the default 5 s between its attempts held the web's workers that long.
        self.options = "-c wal_retrieve_retry_interval=100ms"

    def start(self) -> None:
        if not self.data.exists():
            self.dir.mkdir(parents=True)
            if self.user:
                entry = pwd.getpwnam(self.user)
                os.chown(self.dir, entry.pw_uid, entry.pw_gid)
            backup = [str(self.bin / "pg_basebackup"), "-D", str(self.data), "-R", "-X", "stream", "-c", "fast"]
            _run([*backup, "-h", "127.0.0.1", "-p", str(self.primary.port), "-U", "postgres"], user=self.user)
        super().start()

    def promote(self) -> None:
        """pg_ctl promote, returning once the standby accepts writes."""
        _run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60", "promote"], user=self.user)


def replicate_synchronously(primary: PrivatePostgres, timeout: float = 60) -> None:
    """Make the primary's commits wait for its standby's flush, once the standby streams.

    Set with ALTER SYSTEM after the base backup, so the standby's copy of the configuration
    lacks it: promoted, the standby has no standby to wait for and must not wait.
    """
    connection = psycopg2.connect(host="127.0.0.1", port=primary.port, user="postgres", dbname="postgres")
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("ALTER SYSTEM SET synchronous_standby_names = '*'")
            cursor.execute("ALTER SYSTEM SET synchronous_commit = 'on'")
            cursor.execute("SELECT pg_reload_conf()")
            deadline = time.monotonic() + timeout
            while True:
                cursor.execute("SELECT sync_state FROM pg_stat_replication")
                if ("sync",) in cursor.fetchall():
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError("the private standby did not become synchronous")
                time.sleep(0.2)
    finally:
        connection.close()


class PrivateRabbitMQ:
    """A RabbitMQ node of its own (name, ports, data, logs, cookie), run from /usr/lib/rabbitmq/bin.

    The Debian wrappers in /usr/sbin switch to the `rabbitmq` user and read /etc/rabbitmq, whose
    config pins the shared node's port; calling the real scripts with our own HOME (for the
    Erlang cookie), config file and env file keeps this node apart from the shared one.
    """

    SCRIPTS = Path("/usr/lib/rabbitmq/bin")

    def __init__(self, base: Path, name: str = "rabbitmq", cookie: str | None = None) -> None:
        if not (self.SCRIPTS / "rabbitmq-server").exists():
            raise RuntimeError("no /usr/lib/rabbitmq/bin/rabbitmq-server: install the rabbitmq-server package")
        self.dir = base / name
        self.port = free_port()
        self.node = f"chaos-{os.getpid()}-{name}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        self.process: subprocess.Popen | None = None
        home = self.dir / "home"
        home.mkdir(parents=True)
        # Nodes of one cluster share their Erlang cookie: it is what lets them (and rabbitmqctl) talk.
        cookie_file = home / ".erlang.cookie"
        cookie_file.write_text(cookie or os.urandom(20).hex().upper())
        cookie_file.chmod(0o400)
        (self.dir / "rabbitmq.conf").write_text(f"listeners.tcp.default = 127.0.0.1:{self.port}\n")
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq-env.conf").write_text("")
        self.env = {
            **os.environ,
            "HOME": str(home),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(self.dir / "rabbitmq-env.conf"),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(self.dir / "pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def start(self, timeout: float = 90) -> None:
        self.process = subprocess.Popen(
            [str(self.SCRIPTS / "rabbitmq-server")],
            env=self.env,
            cwd=self.dir,
            stdout=(self.dir / "server.out").open("a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_until_answers(timeout)

    def wait_until_answers(self, timeout: float = 90) -> None:
        """Wait until the node accepts AMQP connections; RuntimeError if it dies or takes too long."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"private RabbitMQ did not start; see {self.dir / 'server.out'}")
            time.sleep(0.3)

    def answers(self) -> bool:
        try:
            parameters = pika.URLParameters(self.url)
            parameters.connection_attempts = 1
            parameters.socket_timeout = 1
            pika.BlockingConnection(parameters).close()
            return True
        except (pika.exceptions.AMQPError, OSError):
            return False

    def stop(self) -> None:
        """Stop the node cleanly (as a restart or upgrade does); durable queues and persistent messages stay."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            _run([str(self.SCRIPTS / "rabbitmqctl"), "-n", self.node, "stop"], env=self.env, timeout=60)
            self.process.wait(timeout=30)
        except (subprocess.SubprocessError, OSError):
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def kill(self) -> None:
        """SIGKILL the node's process group: no clean shutdown, as when its machine dies."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def ctl(self, *arguments: str, tool: str = "rabbitmqctl", timeout: float = 60) -> str:
        """Run a CLI tool (rabbitmqctl, rabbitmq-queues) against this node; its standard output."""
        done = subprocess.run(
            [str(self.SCRIPTS / tool), "-n", self.node, *arguments],
            env=self.env,
            check=True,
            timeout=timeout,
            capture_output=True,
            text=True,
        )
        return done.stdout

    def queue_depth(self, queue: str) -> int:
        return self._queue(queue).message_count

    def queue_consumers(self, queue: str) -> int:
        return self._queue(queue).consumer_count

    def _queue(self, queue: str) -> Any:  # pika's Queue.DeclareOk frame
        connection = pika.BlockingConnection(pika.URLParameters(self.url))
        try:
            return connection.channel().queue_declare(queue=queue, passive=True).method
        finally:
            connection.close()


class PrivateServers:
    """A private PostgreSQL and a broker in one temporary directory, removed by close() whatever happened.

    The database lives through the whole run; the broker is one node or a cluster, and a run
    that needs both starts one, then the other (`start_broker`, `stop_broker`). With `standby`,
    PostgreSQL is a primary with a synchronous standby, and database_url names both in libpq's
    multi-host form, as docs/deploy/database-failover.md says to.
    """

    def __init__(self, *, standby: bool = False) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="chaos-"))
        self.base.chmod(0o755)  # the postgres user must reach its directory inside
        self.postgres = PrivatePostgres(self.base)
        self.standby = PrivateStandby(self.base, self.postgres) if standby else None
        self.rabbitmq: Any = None

    @property
    def database_url(self) -> str:
        if self.standby is None:
            return self.postgres.url
        hosts = f"127.0.0.1:{self.postgres.port},127.0.0.1:{self.standby.port}"
        return f"postgres://postgres@{hosts}/chaos?target_session_attrs=read-write&connect_timeout=5"

    def start(self) -> None:
        self.postgres.start()
        self.postgres.create_database()
        if self.standby is not None:
            self.standby.start()
            replicate_synchronously(self.postgres)

    def start_broker(self, build: Callable[[Path, str], Any]) -> None:
        """Start the broker `build(directory, name)` makes: PrivateRabbitMQ, or chaos.cluster.PrivateRabbitCluster."""
        self.stop_broker()
        self.rabbitmq = build(self.base, f"broker-{len(list(self.base.glob('broker-*')))}")
        self.rabbitmq.start()

    def stop_broker(self) -> None:
        if self.rabbitmq is not None:
            self.rabbitmq.stop()
            self.rabbitmq = None

    def close(self) -> None:
        stops = [self.stop_broker, *([self.standby.stop] if self.standby else []), self.postgres.stop]
        for stop in stops:
            try:
                stop()
            except (subprocess.SubprocessError, OSError) as error:
                print(f"chaos: teardown: {error}", flush=True)
        shutil.rmtree(self.base, ignore_errors=True)
