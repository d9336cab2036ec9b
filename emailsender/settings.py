"""Sender configuration, read once from the environment.

`Settings.from_env()` checks every variable and raises one `SettingsError` naming all the
problems, so a misconfigured deployment fails at start-up with the whole list instead of one
variable per restart.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from emailsender.smtp_url import SmtpUrl, SmtpUrlError

# Rate-limit waits re-queue through these delay tiers too, so a 1 s wait does not sit in a
# 10-minute queue; 60 s is the longest a 429 can make us wait (see delays.RATE_LIMIT_MAX_SECONDS).
RATE_LIMIT_TIERS_MS = (1_000, 10_000, 60_000)

# RABBITMQ_QUEUE_TYPE: quorum queues are RabbitMQ's replicated type (RabbitMQ 4 replicates no
# other); classic queues suit a single development node and deployments not yet migrated.
QUORUM = "quorum"
CLASSIC = "classic"
QUEUE_TYPES = (QUORUM, CLASSIC)

# The providers EMAIL_PROVIDERS may name (emailsender.providers builds them).
PROVIDER_NAMES = ("sendgrid", "smtp", "eml")

_PREFIX_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$")


class SettingsError(ValueError):
    """Raised by `Settings.from_env` with every invalid or missing variable at once."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("Invalid sender configuration: " + "; ".join(problems))


def mask_url_password(url: str) -> str:
    """`amqp://user:secret@host/` -> `amqp://user:***@host/`, for logs and reprs (each URL of a
    comma-separated list, as RABBITMQ_URL may be)."""
    if "," in url:
        return ",".join(mask_url_password(part) for part in url.split(","))
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    userinfo = f"{parts.username}:***" if parts.username else ":***"
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{netloc}"))


def default_bulk_concurrency(concurrency: int) -> int:
    """SENDER_BULK_CONCURRENCY's default: a quarter of the workers (at least one) kept for the
    normal lane, and at least one for the bulk lane (with one worker both lanes share it)."""
    return max(1, concurrency - max(1, concurrency // 4))


@dataclass(frozen=True, repr=False)
class Settings:
    """Everything the sender reads from its environment; defaults match the table in docs/sender/index.md."""

    # Unset only in embedded mode, where the web process calls `handle()` itself.
    rabbitmq_url: str | None = None
    # Unset means EmlFolderClient writes .eml files to OUTBOX_DIR instead of calling SendGrid.
    sendgrid_api_key: str | None = None
    sendgrid_api_host: str = "https://api.sendgrid.com"
    # SendGrid answers mail/send in well under a second; 10 s bounds a stuck call without
    # cutting off a slow-but-working one, and stays well inside the shutdown window.
    sendgrid_timeout_seconds: float = 10.0
    outbox_dir: str = "var/outbox"
    # EMAIL_PROVIDERS in order; empty means "sendgrid" with a key, the .eml outbox ("eml") without.
    email_providers: tuple[str, ...] = ()
    smtp_url: str | None = None
    # Relays answer each SMTP command in well under a second; the same bound as a SendGrid call.
    smtp_timeout_seconds: float = 10.0
    # Half a minute between an open breaker's probes: short next to a provider incident, long
    # enough not to add to one.
    breaker_cool_down_seconds: float = 30.0
    # HTTP calls in flight per process: the calls are I/O bound, so 32 threads keep one CPU
    # busy; scale further with replicas rather than threads.
    concurrency: int = 32
    # Eight messages per worker thread. A message counts against the prefetch from its delivery
    # to its ack, which follows its outcome's confirm by a pass of the connection thread, and
    # that one thread also receives, hands out and publishes everything: with two per worker
    # (64) the workers waited for messages, and one sender drained one-recipient messages to a
    # fake answering at once at 990-1,460 a second; with eight (256), 1,120-1,680, and faster
    # than with 64 in every paired run (docs/sender/reliability.md). The rest stays on the queue for other replicas.
    prefetch: int = 256
    # Workers the bulk lane may hold at once: the rest are kept for the normal lane, so a
    # one-recipient send always finds a free worker while a bulk backlog drains
    # (docs/sender/fairness.md). None: `default_bulk_concurrency` (24 of 32). Read `bulk_workers`.
    bulk_concurrency: int | None = None
    # One bulk message per bulk worker: a bulk message is up to 1,000 recipients, the next one
    # arrives within a broker round trip, and what one replica does not hold the others can take.
    # None: `bulk_workers`. Read `bulk_window`.
    bulk_prefetch: int | None = None
    # Bytes of work messages a process holds at once, both lanes together (intake.py). Each MiB
    # held costs 5-7 MB of RSS while its calls run (the body, its parsed strings, the request's
    # JSON); 6 MiB keeps a sender draining 1 MiB attachments under its 80 MB
    # (docs/performance.md), and is still the prefetch's worth of messages up to 24 KB (one
    # recipient: 1 to 3 KB). The bulk lane may fill only its workers' share of it
    # (`bulk_max_inflight_bytes`).
    max_inflight_bytes: int = 6 * 1024 * 1024
    # Five attempts with base 2 s span about 2 + 8 + 32 + 128 s, which rides out a typical
    # SendGrid incident before the recipients are marked failed.
    max_attempts: int = 5
    retry_base_seconds: float = 2.0
    # The longest single backoff, so a long incident is not followed by hour-long waits.
    retry_max_seconds: float = 600.0
    queue_prefix: str = "emails"
    # RABBITMQ_QUEUE_TYPE: quorum survives the loss of a node in a cluster; classic only for a
    # single development node or queues declared classic before (docs/sender/messages.md).
    queue_type: str = QUORUM
    # Kubernetes sends SIGKILL 30 s after SIGTERM by default; 25 s leaves time to nack and close.
    shutdown_seconds: float = 25.0
    log_level: str = "INFO"
    # "json" (one object per line, for the cluster's log pipeline) or "plain" (a developer's terminal).
    log_format: str = "json"
    # Prometheus metrics over HTTP (metrics.py); None serves none. The manifests set 9100.
    metrics_port: int | None = None
    # All interfaces by default, so the cluster's Prometheus reaches the pod; tests bind 127.0.0.1.
    metrics_host: str = "0.0.0.0"  # noqa: S104
    # The file the process's loop touches on every pass and in every wait (liveness.py); None
    # touches none. Unset by default so that processes sharing a machine never share one file;
    # the manifests set it in each pod's own /tmp.
    liveness_file: str | None = None
    # The longest wait the loops make without touching it is one broker connect attempt
    # (pika's 15 s stack timeout per node in RABBITMQ_URL); 60 s covers three nodes.
    liveness_max_age_seconds: float = 60.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, require_broker: bool = True) -> Settings:
        """Build the settings from `environ` (default `os.environ`).

        `require_broker=False` is for embedded mode, which needs no RABBITMQ_URL.
        Raises `SettingsError` listing every problem.
        """
        env = os.environ if environ is None else environ
        problems: list[str] = []

        def get(name: str) -> str | None:
            value = env.get(name)
            return value.strip() if value is not None and value.strip() else None

        def number(name: str, default: float, parse: Callable[[str], Any], minimum: float) -> Any:
            raw = get(name)
            if raw is None:
                return default
            try:
                value = parse(raw)
            except ValueError:
                value = None
            if value is None or not math.isfinite(value) or value < minimum:
                kind = "an integer" if parse is int else "a number"
                problems.append(f"{name} must be {kind} >= {minimum:g} (got {raw!r})")
                return default
            return value

        rabbitmq_url = get("RABBITMQ_URL")
        if rabbitmq_url is None:
            if require_broker:
                problems.append("RABBITMQ_URL is required (e.g. amqp://guest:guest@127.0.0.1:5672/)")
        elif any(urlsplit(url.strip()).scheme not in ("amqp", "amqps") for url in rabbitmq_url.split(",")):
            problems.append(
                "RABBITMQ_URL must be amqp:// or amqps:// URLs, separated by commas for several nodes "
                f"(got {mask_url_password(rabbitmq_url)!r})"
            )

        api_host = (get("SENDGRID_API_HOST") or cls.sendgrid_api_host).rstrip("/")
        host_parts = urlsplit(api_host)
        if host_parts.scheme not in ("http", "https") or not host_parts.netloc:
            problems.append(f"SENDGRID_API_HOST must be an http(s) URL (got {api_host!r})")

        concurrency = number("SENDER_CONCURRENCY", cls.concurrency, int, 1)
        prefetch = number("SENDER_PREFETCH", 8 * concurrency, int, 1)
        bulk_concurrency = number("SENDER_BULK_CONCURRENCY", default_bulk_concurrency(concurrency), int, 1)
        if bulk_concurrency > concurrency:
            problems.append(
                f"SENDER_BULK_CONCURRENCY ({bulk_concurrency}) must be <= SENDER_CONCURRENCY ({concurrency})"
            )
        bulk_prefetch = number("SENDER_BULK_PREFETCH", bulk_concurrency, int, 1)
        retry_base = number("RETRY_BASE_SECONDS", cls.retry_base_seconds, float, 0.001)
        retry_max = number("RETRY_MAX_SECONDS", cls.retry_max_seconds, float, 0.001)
        if retry_max < retry_base:
            problems.append(f"RETRY_MAX_SECONDS ({retry_max:g}) must be >= RETRY_BASE_SECONDS ({retry_base:g})")

        prefix = get("QUEUE_PREFIX") or cls.queue_prefix
        if not _PREFIX_RE.match(prefix):
            problems.append(f"QUEUE_PREFIX must be letters, digits, '.', '_' or '-' (got {prefix!r})")

        queue_type = (get("RABBITMQ_QUEUE_TYPE") or cls.queue_type).lower()
        if queue_type not in QUEUE_TYPES:
            problems.append(f"RABBITMQ_QUEUE_TYPE must be {' or '.join(QUEUE_TYPES)} (got {queue_type!r})")

        log_level = (get("LOG_LEVEL") or cls.log_level).upper()
        if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            problems.append(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR (got {log_level!r})")

        log_format = (get("LOG_FORMAT") or cls.log_format).lower()
        if log_format not in ("json", "plain"):
            problems.append(f"LOG_FORMAT must be json or plain (got {log_format!r})")
        metrics_port = number("SENDER_METRICS_PORT", 0, int, 0) or None
        if metrics_port is not None and metrics_port > 65535:
            problems.append(f"SENDER_METRICS_PORT must be a TCP port (got {metrics_port})")

        providers = tuple(p.strip().lower() for p in (get("EMAIL_PROVIDERS") or "").split(",") if p.strip())
        unknown = [p for p in providers if p not in PROVIDER_NAMES]
        if unknown or len(set(providers)) != len(providers):
            problems.append(
                f"EMAIL_PROVIDERS must name each of {', '.join(PROVIDER_NAMES)} at most once "
                f"(got {get('EMAIL_PROVIDERS')!r})"
            )
        if "sendgrid" in providers and not get("SENDGRID_API_KEY"):
            problems.append("SENDGRID_API_KEY is required when EMAIL_PROVIDERS names sendgrid")
        smtp_url = get("SMTP_URL")
        if smtp_url is not None:
            try:
                SmtpUrl.parse(smtp_url)
            except SmtpUrlError as exc:
                problems.append(f"SMTP_URL {exc} (got {mask_url_password(smtp_url)!r})")
        elif "smtp" in providers:
            problems.append("SMTP_URL is required when EMAIL_PROVIDERS names smtp (smtp://user:password@host:587)")

        settings = cls(
            rabbitmq_url=rabbitmq_url,
            sendgrid_api_key=get("SENDGRID_API_KEY"),
            sendgrid_api_host=api_host,
            sendgrid_timeout_seconds=number("SENDGRID_TIMEOUT_SECONDS", cls.sendgrid_timeout_seconds, float, 0.001),
            outbox_dir=get("OUTBOX_DIR") or cls.outbox_dir,
            email_providers=providers,
            smtp_url=smtp_url,
            smtp_timeout_seconds=number("SMTP_TIMEOUT_SECONDS", cls.smtp_timeout_seconds, float, 0.001),
            breaker_cool_down_seconds=number("BREAKER_COOL_DOWN_SECONDS", cls.breaker_cool_down_seconds, float, 0.001),
            concurrency=concurrency,
            prefetch=prefetch,
            bulk_concurrency=bulk_concurrency,
            bulk_prefetch=bulk_prefetch,
            max_inflight_bytes=number("SENDER_MAX_INFLIGHT_BYTES", cls.max_inflight_bytes, int, 1024),
            max_attempts=number("SEND_MAX_ATTEMPTS", cls.max_attempts, int, 1),
            retry_base_seconds=retry_base,
            retry_max_seconds=retry_max,
            queue_prefix=prefix,
            queue_type=queue_type,
            shutdown_seconds=number("SENDER_SHUTDOWN_SECONDS", cls.shutdown_seconds, float, 0),
            log_level=log_level,
            log_format=log_format,
            metrics_port=metrics_port,
            metrics_host=get("SENDER_METRICS_HOST") or cls.metrics_host,
            liveness_file=get("LIVENESS_FILE"),
            liveness_max_age_seconds=number("LIVENESS_MAX_AGE_SECONDS", cls.liveness_max_age_seconds, float, 0.001),
        )
        if problems:
            raise SettingsError(problems)
        return settings

    def backoff_seconds(self, attempt: int) -> float:
        """Nominal delay before retrying after failed attempt number `attempt` (1-based), no jitter."""
        exponent = max(attempt - 1, 0)
        if exponent > 60:  # 4**60 overflows nothing but is far past any cap
            return self.retry_max_seconds
        return min(self.retry_base_seconds * 4.0**exponent, self.retry_max_seconds)

    @property
    def retry_delays_ms(self) -> tuple[int, ...]:
        """Delay tiers (ms) for the retry queues: one per backoff step, plus the rate-limit tiers."""
        tiers = {max(1, round(self.backoff_seconds(n) * 1000)) for n in range(1, max(self.max_attempts, 2))}
        return tuple(sorted(tiers | set(RATE_LIMIT_TIERS_MS)))

    @property
    def bulk_workers(self) -> int:
        """Workers the bulk lane may hold at once (never more than `concurrency`)."""
        return min(self.bulk_concurrency or default_bulk_concurrency(self.concurrency), self.concurrency)

    @property
    def bulk_window(self) -> int:
        """Unacked bulk messages this process holds (the bulk consumer's prefetch)."""
        return self.bulk_prefetch or self.bulk_workers

    @property
    def providers(self) -> tuple[str, ...]:
        """EMAIL_PROVIDERS, or its default: sendgrid when its key is set, the .eml outbox otherwise."""
        return self.email_providers or (("sendgrid",) if self.sendgrid_api_key else ("eml",))

    @property
    def uses_sendgrid(self) -> bool:
        return self.sendgrid_api_key is not None

    def __repr__(self) -> str:
        shown = []
        for field in fields(self):
            value = getattr(self, field.name)
            if field.name == "sendgrid_api_key" and value is not None:
                value = "***"
            elif field.name in ("rabbitmq_url", "smtp_url") and value is not None:
                value = mask_url_password(value)
            shown.append(f"{field.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    @property
    def bulk_max_inflight_bytes(self) -> int:
        """Bytes in hand (both lanes) up to which the bulk lane takes more: its workers' share of
        `max_inflight_bytes`, so the rest stays free for the normal lane (intake.py)."""
        return self.max_inflight_bytes * self.bulk_workers // self.concurrency
