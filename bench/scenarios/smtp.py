"""The pipeline through the SMTP provider: one sender, a local SMTP sink, 10-recipient emails."""

import warnings
from typing import Any

from bench.scenarios.delivery import drain
from emailsender.testing.smtp_sink import SmtpSink


def pipeline_smtp(bench, context: dict[str, Any]) -> None:
    """The pipeline scenario's 0 ms backlog drained over SMTP (EMAIL_PROVIDERS=smtp), beside
    pipeline_rcpt_per_s_0ms through the fake SendGrid."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with SmtpSink(keep=False) as sink:
            env = {"EMAIL_PROVIDERS": "smtp", "SMTP_URL": sink.url()}

            def once() -> None:
                rate = drain(bench, context, latency_ms=0, senders=1, sender_env=env)
                bench.record("pipeline_rcpt_per_s_smtp_0ms", rate)

            bench.repeat("pipeline smtp 0 ms", once)
            bench.notes.append(f"pipeline smtp: the sink received {sink.count} messages")
