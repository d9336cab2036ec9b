"""gunicorn's settings for the web process, read automatically from the working directory.

The Procfile's command stays `gunicorn emailsystem.wsgi --bind ... --workers ...`; this file adds
what a command line cannot:

- Prometheus multiprocess mode. Each worker writes its metrics to files in
  PROMETHEUS_MULTIPROC_DIR and /metrics adds them all up (emailsystem/core/metrics.py). The
  directory is emptied when the master starts (counters of a previous run must not leak into
  this one), and a worker's live-gauge files are dropped when it exits.
- JSON lines for gunicorn's own logs, the access log included, with the request id the web
  returned in X-Request-ID as a field (LOG_FORMAT=plain keeps them human-readable).
"""

import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# Before prometheus_client is imported anywhere (it picks its storage at import time), and in
# the master, so every worker forked from it inherits the variable.
_MADE_METRICS_DIR = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _MADE_METRICS_DIR:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="emailsystem-metrics-")

access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'


class AccessFields(logging.Filter):
    """Copies the access log's atoms into fields: status, duration_ms and request_id (the response's X-Request-ID)."""

    def filter(self, record: logging.LogRecord) -> bool:
        atoms = record.args
        if isinstance(atoms, Mapping):  # gunicorn's access atoms (a dict); other records carry a tuple
            try:
                record.status = atoms["s"]
                record.duration_ms = atoms["M"]
                request_id = atoms["{x-request-id}o"]
            except (KeyError, TypeError):
                return True
            if request_id and request_id != "-":
                record.request_id = request_id
        return True


def _logconfig() -> dict:
    log_format = os.environ.get("LOG_FORMAT", "json").strip().lower() or "json"
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "line",
        "filters": ["mask_secrets"],
        "stream": "ext://sys.stderr",
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"line": {"()": "emailsender.logs.formatter_for", "log_format": log_format}},
        "filters": {
            "access_fields": {"()": AccessFields},
            "mask_secrets": {"()": "emailsender.logs.SecretMaskFilter"},
        },
        "handlers": {
            "console": handler,
            "access": {**handler, "filters": ["access_fields", "mask_secrets"], "stream": "ext://sys.stdout"},
        },
        "root": {"level": "INFO", "handlers": ["console"]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["console"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["access"], "propagate": False},
        },
    }


logconfig_dict = _logconfig()


def on_starting(server: Any) -> None:
    """Remove prometheus_client's files from the metrics directory: an earlier run's would be added to this one's.

    Only its `<type>_<pid>.db` files: the directory may be one the operator named, and
    anything else in it is theirs.
    """
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    directory.mkdir(parents=True, exist_ok=True)
    for entry in directory.glob("*.db"):
        if entry.is_file():
            entry.unlink()


def child_exit(server: Any, worker: Any) -> None:
    """A worker is gone: drop its live-gauge files. Its counters' files stay, so totals never go down."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    """Remove the metrics directory this file made (a named one is the operator's, and stays)."""
    if _MADE_METRICS_DIR:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
