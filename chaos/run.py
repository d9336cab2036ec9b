"""`make chaos`: inject faults into a real stack under load and check that nothing accepted is lost.

Starts a private PostgreSQL (with a synchronous standby when database_failover is to run)
and a private RabbitMQ node (never the machine's shared ones; for broker_node_kill, a private
three-node cluster with a stack of its own, run first), the fake SendGrid, an SMTP
sink and every Procfile process (gunicorn with 2 workers, 2 senders, results, relay, webhooks),
then runs each scenario in chaos/faults.py under a steady load of plain, scheduled and batch
sends, lets the stack settle and checks the outcome
(chaos/verdicts.py). Prints the table, writes chaos/results/latest.{md,json}, and exits
non-zero if anything was lost or any check failed.

    python -m chaos.run                        # every scenario (about 7 minutes)
    python -m chaos.run --only sender_kill     # some of them, comma separated
"""

import argparse
import contextlib
import logging
import os
import secrets
import signal
import sys
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chaos.cluster import PrivateRabbitCluster  # noqa: E402
from chaos.faults import OUTAGE_BREAKER_COOL_DOWN_SECONDS, SCENARIOS, Scenario  # noqa: E402
from chaos.servers import PrivateRabbitMQ, PrivateServers  # noqa: E402
from emailsender import topology  # noqa: E402
from emailsender.testing.smtp_sink import SmtpSink  # noqa: E402
from emailsender.testing.tcp_proxy import TcpProxy  # noqa: E402
from scripts import devstack  # noqa: E402

LOGS = ROOT / "chaos" / "results" / "logs"
# Sends per second and recipients per send: a steady load well inside what the stack sustains,
# so what the table shows is the fault, not saturation.
RATE = 25.0
RECIPIENTS = 3
SENDERS = 2
# Load before the fault (to have work in flight) and after it is cleared.
LEAD_SECONDS = 5.0
TAIL_SECONDS = 5.0
# The stack's settings that differ from the defaults, and why.
STACK_SETTINGS = {
    "QUEUE_PREFIX": "chaos",
    # Hung SendGrid requests are abandoned sooner, so the hang scenario stays short.
    "SENDGRID_TIMEOUT_SECONDS": "3",
    # Backoff 0.5-1, 2-4, 8-16, 15-30 s: five attempts span at least 25 s, longer than the
    # 20 s SendGrid outage, and the longest wait stays under a minute to keep the run short.
    "RETRY_BASE_SECONDS": "1",
    "RETRY_MAX_SECONDS": "30",
    "WEB_CONCURRENCY": "2",
    # webhooks_kill's receiver listens on 127.0.0.1, over plain HTTP.
    "OUTBOUND_WEBHOOKS_ALLOW_PRIVATE": "1",
}


# One secret key for every stack of a run: secrets stored under it (outbound webhook endpoints,
# created by this process's Django, set up with the first stack's environment) stay readable.
SECRET_KEY = secrets.token_urlsafe(40)


def stack_environment(servers: PrivateServers, web_port: int, fake_port: int) -> dict[str, str]:
    return devstack.stack_environment(
        database_url=servers.database_url,
        rabbitmq_url=servers.rabbitmq.url,
        fake_port=fake_port,
        web_port=web_port,
        LOG_LEVEL="INFO",
        DJANGO_SECRET_KEY=SECRET_KEY,
        **STACK_SETTINGS,
    )


def prepare() -> str:
    """Migrate the private database and create the sending user; return its token."""
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from emailsystem.users.models import User
    from emailsystem.users.services import user_email_verified_set

    call_command("migrate", "--noinput", verbosity=0)
    # The second stack of a run (the cluster's) finds the user the first one made.
    user, created = User.objects.get_or_create(
        email="chaos@example.com", defaults={"username": "chaos", "daily_quota": 2_000_000_000}
    )
    if created:
        # Granted as an admin's "Email address verified" box does: only a verified address sends From itself.
        user_email_verified_set(user=user, verified=True)
    return Token.objects.get_or_create(user=user)[0].key


def sender_environment(ctx: dict[str, Any], providers: tuple[str, ...]) -> dict[str, str]:
    """The senders' environment for `providers`: the stack's own for SendGrid alone. With SMTP
    second, SMTP_URL is the sink, SendGrid is reached through ctx["proxy"] (whose port
    sendgrid_outage closes), and the breakers probe every OUTAGE_BREAKER_COOL_DOWN_SECONDS."""
    env = ctx["stack"].env
    if providers == ("sendgrid",):
        return env
    return {
        **env,
        "EMAIL_PROVIDERS": ",".join(providers),
        "SMTP_URL": ctx["sink"].url(),
        "SENDGRID_API_HOST": f"http://127.0.0.1:{ctx['proxy'].port}",
        "BREAKER_COOL_DOWN_SECONDS": str(OUTAGE_BREAKER_COOL_DOWN_SECONDS),
    }


def use_providers(ctx: dict[str, Any], providers: tuple[str, ...]) -> None:
    """Restart the senders (SIGTERM: they finish or requeue what they hold) with `providers`, unless they have them."""
    if ctx["providers"] == providers:
        return
    stack = ctx["stack"]
    stack.stop("sender")
    env = sender_environment(ctx, providers)
    for _ in range(SENDERS):
        stack.start("sender", env=env)
    ctx["providers"] = providers
    queue = topology.work_queue(ctx["prefix"])
    deadline = time.monotonic() + 60
    while ctx["servers"].rabbitmq.queue_consumers(queue) < SENDERS:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the senders did not start consuming {queue}:\n{stack.diagnostics()}")
        time.sleep(0.3)


def run_scenario(ctx: dict[str, Any], scenario: Scenario) -> "Outcome":  # type: ignore[name-defined]  # noqa: F821
    from chaos import arrivals, verdicts, webhooks
    from chaos.load import ReadyzProbe, SteadyLoad
    from chaos.outcome import Outcome
    from emailsystem.emails.models import Delivery

    name = scenario.name
    print(f"chaos: {name}: {scenario.description}", flush=True)
    use_providers(ctx, scenario.providers)
    outcome = Outcome(scenario=name, description=scenario.description)
    first_delivery_id = (Delivery.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1
    fake_since = arrivals.fake_count(ctx["fake"])
    sink_since = len(ctx["sink"].received)
    dead_before = verdicts.queue_depths(ctx)[f"{ctx['prefix']}.dead"]
    probe = ReadyzProbe(ctx["web"]).start()
    load = SteadyLoad(web=ctx["web"], token=ctx["token"], rate=RATE, recipients=RECIPIENTS, label=name).start()
    time.sleep(LEAD_SECONDS)
    fault = scenario.inject(ctx)
    outcome.notes = fault.notes
    time.sleep(TAIL_SECONDS)
    answers = load.stop()
    outcome.settle_seconds = round(verdicts.settle(ctx, first_delivery_id), 1)
    readyz = probe.stop()
    if outcome.settle_seconds < 0:
        outcome.failures.append(f"did not settle within {verdicts.SETTLE_SECONDS}s: {verdicts.queue_depths(ctx)}")
    verdicts.check(
        ctx=ctx,
        outcome=outcome,
        fault=fault,
        answers=answers,
        readyz=readyz,
        first_delivery_id=first_delivery_id,
        fake_since=fake_since,
        sink_since=sink_since,
        dead_before=dead_before,
    )
    if "webhooks_receiver" in ctx:
        webhooks.check_webhooks(ctx, outcome)
    verdict = "pass" if outcome.passed else "FAIL: " + "; ".join(outcome.failures)
    print(
        f"chaos: {name}: {outcome.accepted} accepted {outcome.emails_by_kind}, "
        f"{outcome.delivered}/{outcome.recipients} recipients delivered ({outcome.via_smtp} via SMTP), "
        f"{outcome.duplicated} duplicated, {outcome.lost} lost, {outcome.early} scheduled early, "
        f"recovery {outcome.recovery_seconds}s, {outcome.web_5xx} 5xx; {verdict}",
        flush=True,
    )
    return outcome


def run_stack(servers: PrivateServers, scenarios: list[Scenario], *, cluster: bool) -> list["Outcome"]:  # type: ignore[name-defined]  # noqa: F821
    """Start a broker (a three-node cluster when `cluster`) and the stack on it, run the scenarios
    in order, and stop the stack and the broker whatever happened."""
    print(f"chaos: private {'three-node RabbitMQ cluster' if cluster else 'RabbitMQ node'}", flush=True)
    servers.start_broker(PrivateRabbitCluster if cluster else PrivateRabbitMQ)
    web_port, fake_port = devstack.free_port(), devstack.free_port()
    env = stack_environment(servers, web_port, fake_port)
    # The stack logs at INFO to its files; this process only prints its own lines. Django's
    # settings keep the first stack's RABBITMQ_URL: this process reads queues through ctx["servers"].
    os.environ.update({**env, "LOG_LEVEL": "WARNING"})
    import django

    django.setup()
    from django.db import connections

    from chaos.webhooks import kill_webhooks
    from emailsystem.emails.delivery.config import sender_settings

    # pika logs every refused connection while the broker is down, with a traceback each.
    logging.getLogger("pika").setLevel(logging.CRITICAL)
    outcomes = []
    try:
        with contextlib.ExitStack() as cleanup:
            cleanup.callback(connections.close_all)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # aiosmtpd's own warnings about its event loop and TLS
                sink = cleanup.enter_context(SmtpSink())
            # The senders reach the fake through it in sendgrid_outage, which closes its port.
            proxy = TcpProxy("127.0.0.1", fake_port)
            cleanup.callback(proxy.close)
            stack = devstack.Stack(env, LOGS)
            cleanup.callback(stack.stop_all)
            config = sender_settings()
            ctx: dict[str, Any] = {
                "servers": servers,
                "stack": stack,
                "token": prepare(),
                "web": f"http://127.0.0.1:{web_port}",
                "fake": f"http://127.0.0.1:{fake_port}",
                "proxy": proxy,
                "sink": sink,
                "prefix": STACK_SETTINGS["QUEUE_PREFIX"],
                "retry_delays_ms": config.retry_delays_ms,
                "sendgrid_timeout": float(STACK_SETTINGS["SENDGRID_TIMEOUT_SECONDS"]),
                "sender_prefetch": config.prefetch,
                "recipients": RECIPIENTS,
                "providers": ("sendgrid",),  # what the running senders send through
                "kill_webhooks": kill_webhooks,
            }
            stack.start_fake(fake_port, "--no-bodies")
            for role in ("web", "results", "relay", "webhooks", *["sender"] * SENDERS):
                stack.start(role)
            devstack.wait_for_http(f"{ctx['web']}/healthz")
            devstack.wait_for_http(f"{ctx['fake']}/_fake/health")
            for scenario in scenarios:
                outcomes.append(run_scenario(ctx, scenario))
    finally:
        servers.stop_broker()
    return outcomes


def main() -> int:
    names = [scenario.name for scenario in SCENARIOS]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(names), help=f"comma separated, of {names}")
    args = parser.parse_args()
    only = args.only.split(",")
    if set(only) - set(names):
        parser.error(f"unknown scenarios: {sorted(set(only) - set(names))}")
    # SIGTERM (CI's timeout, Ctrl-C's cousin) must still run the teardown in the finally below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    started = time.monotonic()
    # A synchronous standby only when a scenario needs it: it slows every commit a little.
    servers = PrivateServers(standby="database_failover" in only)
    outcomes = []
    try:
        print(f"chaos: private PostgreSQL and RabbitMQ in {servers.base}", flush=True)
        servers.start()
        # The cluster's scenarios first: database_failover, among the single node's, must run
        # last, since the primary it kills stays dead and its standby serves what follows.
        for cluster in (True, False):
            chosen = [scenario for scenario in SCENARIOS if scenario.name in only and scenario.cluster == cluster]
            if chosen:
                outcomes += run_stack(servers, chosen, cluster=cluster)
    finally:
        servers.close()

    from chaos import report

    seconds = time.monotonic() - started
    command = "make chaos" + ("" if set(only) == set(names) else f' CHAOS_ARGS="--only {args.only}"')
    markdown = report.write(outcomes, STACK_SETTINGS, seconds, command)
    print(markdown, flush=True)
    print(f"chaos: done in {seconds:.0f}s; logs in {LOGS}", flush=True)
    return 0 if outcomes and all(o.passed for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
