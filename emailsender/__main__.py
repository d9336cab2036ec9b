"""`python -m emailsender`: run one sender process until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading

from emailsender.settings import SettingsError

ENVIRONMENT_HELP = """\
environment (defaults in brackets):
  RABBITMQ_URL              broker URL, required (amqp://user:pass@host:5672/vhost)
  SENDGRID_API_KEY          unset: write .eml files to OUTBOX_DIR instead of calling SendGrid
  SENDGRID_API_HOST         [https://api.sendgrid.com] point at a fake for tests and benchmarks
  SENDGRID_TIMEOUT_SECONDS  [10] timeout of every HTTP call
  OUTBOX_DIR                [var/outbox]
  SENDER_CONCURRENCY        [32] HTTP calls in flight per process
  SENDER_PREFETCH           [8 x concurrency] unacked messages held per process
  SENDER_MAX_INFLIGHT_BYTES [6291456] bytes of work messages held per process, both lanes
  SEND_MAX_ATTEMPTS         [5] attempts before a retryable failure becomes final
  RETRY_BASE_SECONDS        [2] backoff: base * 4**(attempt-1), with jitter
  RETRY_MAX_SECONDS         [600] cap of one backoff
  QUEUE_PREFIX              [emails] exchange and queue name prefix
  SENDER_SHUTDOWN_SECONDS   [25] time allowed to finish in-flight calls on SIGTERM
  LOG_LEVEL                 [INFO]
  LOG_FORMAT                [json] or plain
  SENDER_METRICS_PORT       [unset: no metrics server] Prometheus metrics on this port
  SENDER_METRICS_HOST       [0.0.0.0] the metrics server's address
  LIVENESS_FILE             [unset: none] the loop touches this file; python -m emailsender.liveness checks it
  LIVENESS_MAX_AGE_SECONDS  [60] older than this, that check fails: the loop is stuck

exit status: 0 after a clean stop, 2 for configuration or broker errors that a restart with
the same configuration would not fix, 1 for anything unexpected.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m emailsender",
        description="Consume work messages from RabbitMQ and deliver them through SendGrid.",
        epilog=ENVIRONMENT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--check-config", action="store_true", help="validate the environment, print the settings and exit"
    )
    args = parser.parse_args(argv)

    from emailsender import logs
    from emailsender.consumer import Sender
    from emailsender.settings import Settings

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.check_config:
        print(repr(settings))
        return 0

    logs.configure(settings.log_level, settings.log_format)
    if settings.metrics_port is not None:
        from emailsender import metrics

        metrics.serve(settings.metrics_port, settings.metrics_host)
    if not settings.uses_sendgrid:
        logging.getLogger("emailsender").warning(
            "SENDGRID_API_KEY is unset: emails are written as .eml files, not sent",
            extra={"outbox_dir": settings.outbox_dir},
        )
    sender = Sender(settings)
    sender.install_signal_handlers()
    code = sender.run()
    sender.close()
    return code


if __name__ == "__main__":
    exit_code = main()
    if threading.active_count() > 1:
        # A worker thread may still be inside an HTTP call past the shutdown window; its message
        # is already requeued, so do not let the interpreter wait for it at exit.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(exit_code)
    sys.exit(exit_code)
