"""The benchmark scenarios, one module per concern. Each scenario records one sample per run into
`bench.samples` under the keys in bench/report.py; bench/run.py runs them by name, in order."""

from bench.scenarios.api import api_hello, api_list, api_send, api_send_1000
from bench.scenarios.batch import api_batch
from bench.scenarios.common import prepare, send_payload, settle
from bench.scenarios.delivery import build_backlog, e2e, pipeline, pipeline_1rcpt
from bench.scenarios.fields import api_send_attachment
from bench.scenarios.prune import prune
from bench.scenarios.raw import raw
from bench.scenarios.scheduled import scheduled
from bench.scenarios.sharing import fair, pipeline_io
from bench.scenarios.smtp import pipeline_smtp
from bench.scenarios.webhooks import webhook_events_per_s

__all__ = [
    "api_batch",
    "api_hello",
    "api_list",
    "api_send",
    "api_send_1000",
    "api_send_attachment",
    "build_backlog",
    "e2e",
    "fair",
    "pipeline",
    "pipeline_1rcpt",
    "pipeline_io",
    "pipeline_smtp",
    "prepare",
    "prune",
    "raw",
    "scheduled",
    "send_payload",
    "settle",
    "webhook_events_per_s",
]
