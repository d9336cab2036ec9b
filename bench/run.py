"""`make bench`: measure the service on this machine and write bench/results/latest.{json,md,png}.

Starts the stack as deployed (gunicorn web with the Procfile's settings, sender(s), results,
relay, the fake SendGrid) against local PostgreSQL and RabbitMQ, runs bounded loads against
127.0.0.1 only, and reports the median of several runs per key. The million-email log used
by `api_list_p99_ms_1m` is seeded once into the `emailsystem_bench` database and reused.

    python -m bench.run            # everything, 3 runs each (about 10 minutes)
    python -m bench.run --quick    # 1 short run each, to try the harness
    python -m bench.run --only api_send,pipeline
"""

import argparse
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts import devstack  # noqa: E402

# Overridable so that two checkouts can measure on one machine without sharing a stack.
WEB_PORT = int(os.environ.get("BENCH_WEB_PORT", "8300"))
FAKE_PORT = int(os.environ.get("BENCH_FAKE_PORT", "8325"))
QUEUE_PREFIX = os.environ.get("BENCH_QUEUE_PREFIX", "bench")
LOGS = ROOT / "bench" / "results" / "logs"
SCENARIOS = [
    "raw",
    "api_hello",
    "api_send",
    "api_send_1000",
    "api_send_attachment",
    "api_batch",
    "api_list",
    "e2e",
    "pipeline",
    "pipeline_1rcpt",
    "pipeline_smtp",
    "pipeline_io",
    "fair",
    "scheduled",
    "prune",
    "webhook_events_per_s",
]


def environment() -> dict[str, str]:
    return devstack.stack_environment(
        database_url=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/emailsystem_bench"),
        rabbitmq_url=os.environ.get("BENCH_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/"),
        fake_port=FAKE_PORT,
        web_port=WEB_PORT,
        QUEUE_PREFIX=QUEUE_PREFIX,
        LOG_LEVEL="WARNING",
    )


class Bench:
    def __init__(self, runs: int, quick: bool) -> None:
        self.runs = runs
        self.quick = quick
        self.samples: dict[str, list[float]] = {}
        self.notes: list[str] = []

    def seconds(self, full: int) -> int:
        return max(3, full // 4) if self.quick else full

    def record(self, key: str, value: float) -> None:
        self.samples.setdefault(key, []).append(round(value, 2))
        print(f"  {key} = {value:.2f}", flush=True)

    def repeat(self, name: str, once: Callable[[], None]) -> None:
        for run in range(1, self.runs + 1):
            print(f"{name}: run {run}/{self.runs}", flush=True)
            vacuum()
            once()


def vacuum() -> None:
    """VACUUM (ANALYZE) the bench database, as autovacuum would between runs: where PostgreSQL
    runs without it, as this machine's CI configuration has it (conf.d/90-ci.conf), every row an
    earlier run updated or deleted stays dead (887,000 dead deliveries after one session of runs)."""
    from django.db import connection  # Django is set up by main() before any scenario runs

    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one short run per key")
    parser.add_argument("--only", default=",".join(SCENARIOS), help=f"comma separated, of {SCENARIOS}")
    args = parser.parse_args()
    only = set(args.only.split(","))
    unknown = only - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {sorted(unknown)}")

    env = environment()
    os.environ.update(env)
    devstack.ensure_database(env["DATABASE_URL"])

    import django

    django.setup()
    from bench import scenarios
    from bench.report import write_report

    bench = Bench(runs=1 if args.quick else args.runs, quick=args.quick)
    started = time.monotonic()
    context = scenarios.prepare(seed="api_list" in only)
    stack = devstack.Stack(env, LOGS, sample_rss=True)
    try:
        stack.start_fake(FAKE_PORT)
        stack.start("web")
        stack.start("results")
        stack.start("relay")
        stack.start("sender")
        devstack.wait_for_http(f"http://127.0.0.1:{WEB_PORT}/healthz")
        devstack.wait_for_http(f"http://127.0.0.1:{FAKE_PORT}/_fake/health")
        context.update(web=f"http://127.0.0.1:{WEB_PORT}", fake=f"http://127.0.0.1:{FAKE_PORT}", stack=stack)
        for name in SCENARIOS:
            if name in only:
                getattr(scenarios, name)(bench, context)
                scenarios.settle(context)
    finally:
        stack.stop_all()
    for role, key in (("web", "web_rss_mb"), ("sender", "sender_rss_mb"), ("results", "results_rss_mb")):
        if role in stack.peak_rss:
            bench.samples[key] = [round(stack.peak_rss[role], 1)]
    medians = {key: round(statistics.median(values), 2) for key, values in bench.samples.items()}
    write_report(
        medians=medians, samples=bench.samples, notes=bench.notes, quick=args.quick, partial=only != set(SCENARIOS)
    )
    print(f"bench: done in {time.monotonic() - started:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    sys.exit(main())
