"""The web side's Prometheus metrics and the /metrics answer.

gunicorn runs several worker processes, and a scrape reaches one of them. With
PROMETHEUS_MULTIPROC_DIR set (gunicorn.conf.py sets and clears it at start-up), every worker
writes its samples to memory-mapped files there, and /metrics aggregates all the files, so
any worker answers for the whole pod. Without it (runserver, tests, results, relay) the
process's own registry is served.

Labels hold only route names, methods, status codes and publisher names: no path, address,
user or id ever becomes a label, so neither user data nor unbounded cardinality reaches
Prometheus.
"""

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

HTTP_REQUESTS = Counter(
    "emailsystem_http_requests_total",
    "HTTP requests answered, by route (URL pattern name), method and status code.",
    ["route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "emailsystem_http_request_duration_seconds",
    "Time from the request reaching Django to the response leaving it, by route and method.",
    ["route", "method"],
    # The send endpoint answers in 5-50 ms; the upper buckets catch a struggling database.
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
EMAILS_ACCEPTED = Counter("emailsystem_emails_accepted_total", "Sends accepted by the API (202), emails.")
RECIPIENTS_ACCEPTED = Counter(
    "emailsystem_recipients_accepted_total", "Sends accepted by the API (202), counted in recipients."
)
QUEUE_PUBLISH_FAILURES = Counter(
    "emailsystem_queue_publish_failures_total",
    "Work messages the broker did not confirm, left in the outbox for the relay: by publisher "
    "(dispatcher: the web's after-commit publish; relay: the relay process).",
    ["publisher"],
)

# Methods are a closed set for the label; anything else (a scanner's "PROPFIND") is "other".
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def method_label(method: str | None) -> str:
    return method if method in _METHODS else "other"


# (route, method label, status) -> the two series a request updates. `labels()` takes a lock
# and builds a key each call; routes, method labels and statuses are few, so the children are
# kept. Keyed by the label, not the raw method: a client inventing a new method per request
# must not grow this cache without bound.
_request_series: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def request_observed(*, route: str, method: str | None, status: int, seconds: float) -> None:
    """Count one answered request and its duration (ObservabilityMiddleware)."""
    label = method_label(method)
    key = (route, label, status)
    series = _request_series.get(key)
    if series is None:
        series = (HTTP_REQUESTS.labels(route, label, str(status)), HTTP_DURATION.labels(route, label))
        _request_series[key] = series
    series[0].inc()
    series[1].observe(seconds)


def sends_accepted(*, recipients: int) -> None:
    EMAILS_ACCEPTED.inc()
    RECIPIENTS_ACCEPTED.inc(recipients)


def exposition() -> tuple[bytes, str]:
    """The text format of every metric: all gunicorn workers' in multiprocess mode, else this process's."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
