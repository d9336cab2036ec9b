"""The faults, one function each. Each injects its fault, undoes it the way an operator or a
supervisor would, and says when the fault began and when it was cleared."""

import json
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chaos.servers import kill_postgres, replicate_synchronously
from emailsender import topology

# How long a supervisor (Kubernetes, systemd) waits before restarting a killed process.
RESTART_DELAY_SECONDS = 2.0
DATABASE_DOWN_SECONDS = 10.0
# From the primary's death to the standby's promotion: an operator's detection and decision
# (CloudNativePG notices a dead primary within seconds and then promotes; see
# docs/deploy/database-failover.md).
FAILOVER_PROMOTE_AFTER_SECONDS = 5.0
SENDGRID_500_SECONDS = 20.0
SENDGRID_429_SECONDS = 10.0
SENDGRID_HANG_SECONDS = 10.0
# 429 answers say the window resets this far ahead (X-RateLimit-Reset).
SENDGRID_429_RESET_SECONDS = 2.0
# While a sender is killed SendGrid answers this slowly, so the victim holds requests that
# SendGrid has accepted but whose answer it never reads: the documented duplicate window.
SLOW_SENDGRID_MS = 300
# SendGrid's outage, 20 s in all: its API answers 503, then its port is closed.
SENDGRID_OUTAGE_503_SECONDS = 10.0
SENDGRID_OUTAGE_CLOSED_SECONDS = 10.0
# The senders' BREAKER_COOL_DOWN_SECONDS in the outage: a probe every 5 s meets both phases of
# the outage, and finds SendGrid back within 5 s of its return.
OUTAGE_BREAKER_COOL_DOWN_SECONDS = 5.0
# After the cool-down, time for the probe itself and for mail already on its way over SMTP.
FAILBACK_SLACK_SECONDS = 2.0
# webhooks_kill: outbound webhook events the receiver holds before the kill, so the victim has work in flight.
EVENTS_BEFORE_KILL = 50


@dataclass
class Fault:
    began: float  # time.time()
    cleared: float = 0.0
    # Where a crash can duplicate (docs/delivery/crash-windows.md): a delivery may reach
    # SendGrid twice only if its first copy was accepted before this moment.
    crash_at: float | None = None
    # At most this many deliveries may be duplicated (what the crashed process could hold).
    duplicate_bound: int = 0
    database_down: tuple[float, float] | None = None
    # SendGrid unreachable from the senders, with a second provider to fail over to.
    sendgrid_down: tuple[float, float] | None = None
    # By then every sender's breaker has had a probe find SendGrid back: nothing goes to SMTP after it.
    failback_by: float | None = None
    notes: list[str] = field(default_factory=list)


def kill_sender(ctx: dict[str, Any]) -> Fault:
    """SIGKILL one of the two senders with requests in flight at a slow SendGrid; a supervisor restarts it.

    Duplicates are allowed here, at most what the victim could hold (its prefetch).
    """
    stack = ctx["stack"]
    fault = Fault(began=time.time(), duplicate_bound=ctx["sender_prefetch"] * ctx["recipients"])
    _fake_mode(ctx["fake"], latency_ms=SLOW_SENDGRID_MS)
    time.sleep(2)  # let the senders fill up with slow requests
    victim = stack.running["sender"].pop(0)
    fault.crash_at = time.time()
    victim.kill()
    _fake_mode(ctx["fake"], latency_ms=0)
    time.sleep(RESTART_DELAY_SECONDS)
    stack.start("sender")
    fault.cleared = time.time()
    return fault


def kill_results(ctx: dict[str, Any]) -> Fault:
    """SIGKILL the results consumer with results in flight; a supervisor restarts it."""
    stack = ctx["stack"]
    victim = stack.running["results"].pop(0)
    fault = Fault(began=time.time())
    victim.kill()
    time.sleep(RESTART_DELAY_SECONDS)
    stack.start("results")
    fault.cleared = time.time()
    return fault


def webhooks_kill(ctx: dict[str, Any]) -> Fault:
    """SIGKILL the webhooks process while it delivers; chaos/webhooks.py does it (it needs Django)."""
    return ctx["kill_webhooks"](ctx)


def restart_broker(ctx: dict[str, Any]) -> Fault:
    """Stop the RabbitMQ node and start it again (a restart, an upgrade); queues are durable."""
    rabbitmq = ctx["servers"].rabbitmq
    # Every sender's unacked messages and every unconfirmed publish lose their connection.
    fault = Fault(began=time.time(), duplicate_bound=2 * ctx["sender_prefetch"] * ctx["recipients"])
    _fake_mode(ctx["fake"], latency_ms=SLOW_SENDGRID_MS)
    time.sleep(2)  # senders hold slow requests when the broker goes
    rabbitmq.stop()
    # The node closes client connections late in its shutdown: the acks are lost up to here.
    fault.crash_at = time.time()
    _fake_mode(ctx["fake"], latency_ms=0)
    rabbitmq.start()
    fault.cleared = time.time()
    return fault


def kill_broker_node(ctx: dict[str, Any]) -> Fault:
    """SIGKILL the cluster node that leads the work queue (chaos/cluster.py), wait for the
    survivors to elect new leaders, then start the node again; it rejoins the cluster.

    Every process connected to the victim loses its connection: the senders' unacked messages
    are redelivered and unconfirmed publishes are retried, so duplicates are bounded as in
    broker_restart. Processes connected elsewhere carry on.
    """
    cluster = ctx["servers"].rabbitmq
    queues = topology.all_queues(ctx["prefix"], ctx["retry_delays_ms"])
    fault = Fault(began=time.time(), duplicate_bound=2 * ctx["sender_prefetch"] * ctx["recipients"])
    _fake_mode(ctx["fake"], latency_ms=SLOW_SENDGRID_MS)
    time.sleep(2)  # senders hold slow requests when the node dies
    leaders = cluster.leaders()
    victim = cluster.node_named(leaders[topology.work_queue(ctx["prefix"])])
    led = sorted(queue for queue in queues if leaders.get(queue) == victim.node)
    fault.crash_at = time.time()
    victim.kill()
    _fake_mode(ctx["fake"], latency_ms=0)
    elected = cluster.wait_for_leaders(led, excluding=victim.node)
    fault.notes.append(f"killed {victim.node}, leader of {len(led)} of {len(queues)} queues")
    fault.notes.append(f"new leaders {elected:.1f} s after the kill")
    time.sleep(RESTART_DELAY_SECONDS)
    restarted = time.monotonic()
    victim.start()
    fault.notes.append(f"the node answered again {time.monotonic() - restarted:.1f} s after its start")
    fault.cleared = time.time()
    return fault


def database_down(ctx: dict[str, Any]) -> Fault:
    """Stop PostgreSQL (fast shutdown: sessions are cut) for DATABASE_DOWN_SECONDS, then start it."""
    postgres = ctx["servers"].postgres
    fault = Fault(began=time.time())
    postgres.stop()
    time.sleep(DATABASE_DOWN_SECONDS)
    postgres.start()
    fault.cleared = time.time()
    fault.database_down = (fault.began, fault.cleared)
    return fault


def database_failover(ctx: dict[str, Any]) -> Fault:
    """SIGKILL the primary PostgreSQL and its backends (its machine dies); promote the synchronous
    standby FAILOVER_PROMOTE_AFTER_SECONDS later. The stack's DATABASE_URL names both hosts with
    target_session_attrs=read-write, so every process reconnects to whichever accepts writes.

    The outage the API may answer 503 in is from the kill to the end of the promotion.
    """
    servers = ctx["servers"]
    if servers.standby is None:
        raise RuntimeError("database_failover needs PrivateServers(standby=True)")
    # Every commit until the kill waited for the standby: pg_stat_replication says "sync" now.
    replicate_synchronously(servers.postgres)
    fault = Fault(began=time.time())
    kill_postgres(servers.postgres)
    time.sleep(FAILOVER_PROMOTE_AFTER_SECONDS)
    servers.standby.promote()
    fault.cleared = time.time()
    fault.database_down = (fault.began, fault.cleared)
    ready = _ready_again(ctx["web"])
    fault.notes.append(
        f"standby promoted {fault.cleared - fault.began:.1f} s after the primary's kill; "
        f"/readyz answered 200 again {ready - fault.began:.1f} s after the kill"
    )
    return fault


def _ready_again(web: str, timeout: float = 60) -> float:
    """When (time.time()) /readyz first answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{web}/readyz", timeout=5) as response:
                if response.status == 200:
                    return time.time()
        except OSError:  # urllib's HTTPError (a 503) is one
            pass
        time.sleep(0.1)
    raise RuntimeError(f"/readyz did not answer 200 within {timeout:g} s of the promotion")


def sendgrid_errors(ctx: dict[str, Any]) -> Fault:
    """SendGrid answers 500, then 429 with X-RateLimit-Reset, then hangs; then 202 again."""
    fake = ctx["fake"]
    fault = Fault(began=time.time())
    _fake_mode(fake, status=500)
    time.sleep(SENDGRID_500_SECONDS)
    _fake_mode(fake, status=429, reset_seconds=SENDGRID_429_RESET_SECONDS)
    time.sleep(SENDGRID_429_SECONDS)
    # Longer than the senders' SENDGRID_TIMEOUT_SECONDS, so every request held times out.
    _fake_mode(fake, status="hang", hang_seconds=ctx["sendgrid_timeout"] * 2)
    time.sleep(SENDGRID_HANG_SECONDS)
    _fake_mode(fake, status=202)
    fault.cleared = time.time()
    return fault


def sendgrid_outage(ctx: dict[str, Any]) -> Fault:
    """SendGrid down for 20 s while the senders have SMTP second: its API answers 503, then its
    port is closed (connections cut, new ones refused); then it answers 202 on its port again.

    The senders reach the fake through ctx["proxy"], whose port this closes. The cut comes while
    the fake answers 503, so no request it cuts was accepted: every recipient must arrive exactly
    once, through one provider or the other. The load goes on until every breaker has had its
    probe, so the tail shows mail back on SendGrid.
    """
    fake, proxy = ctx["fake"], ctx["proxy"]
    fault = Fault(began=time.time())
    _fake_mode(fake, status=503)
    time.sleep(SENDGRID_OUTAGE_503_SECONDS)
    proxy.refuse()
    time.sleep(SENDGRID_OUTAGE_CLOSED_SECONDS)
    _fake_mode(fake, status=202)
    proxy.listen()
    fault.cleared = time.time()
    fault.sendgrid_down = (fault.began, fault.cleared)
    fault.failback_by = fault.cleared + OUTAGE_BREAKER_COOL_DOWN_SECONDS + FAILBACK_SLACK_SECONDS
    time.sleep(OUTAGE_BREAKER_COOL_DOWN_SECONDS)
    return fault


def _fake_mode(fake: str, **mode: Any) -> None:
    request = urllib.request.Request(
        f"{fake}/_fake/mode", data=json.dumps(mode).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        response.read()


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str  # what is done
    inject: Callable[[dict[str, Any]], Fault]
    # EMAIL_PROVIDERS of the senders during the scenario (run.py restarts them when it changes).
    providers: tuple[str, ...] = ("sendgrid",)
    # Runs on a stack of its own whose broker is a three-node cluster (chaos/cluster.py).
    cluster: bool = False


SCENARIOS = [
    Scenario("sender_kill", "SendGrid slowed to 300 ms; SIGKILL one of two senders, restart it 2 s later", kill_sender),
    Scenario("results_kill", "SIGKILL the results consumer, restart it 2 s later", kill_results),
    Scenario(
        "webhooks_kill",
        "an endpoint on 127.0.0.1 takes email.queued and email.sent; SIGKILL the webhooks process once "
        f"{EVENTS_BEFORE_KILL} events arrived, restart it 2 s later",
        webhooks_kill,
    ),
    Scenario("broker_restart", "SendGrid slowed to 300 ms; stop and start the RabbitMQ node", restart_broker),
    Scenario(
        "broker_node_kill",
        "three-node RabbitMQ cluster, SendGrid slowed to 300 ms; SIGKILL the node leading the work queue, "
        "start it again once new leaders are elected",
        kill_broker_node,
        cluster=True,
    ),
    Scenario("database_down", "stop PostgreSQL for 10 s, then start it", database_down),
    Scenario("sendgrid_errors", "SendGrid: 500 for 20 s, 429 for 10 s, hang for 10 s", sendgrid_errors),
    Scenario(
        "sendgrid_outage",
        "senders with EMAIL_PROVIDERS=sendgrid,smtp and "
        f"BREAKER_COOL_DOWN_SECONDS={OUTAGE_BREAKER_COOL_DOWN_SECONDS:g}; SendGrid: 503 for "
        f"{SENDGRID_OUTAGE_503_SECONDS:g} s, then its port closed for {SENDGRID_OUTAGE_CLOSED_SECONDS:g} s",
        sendgrid_outage,
        providers=("sendgrid", "smtp"),
    ),
    # Last: the primary stays dead, and database_down stops and starts that primary.
    Scenario(
        "database_failover",
        "primary PostgreSQL with a synchronous standby; SIGKILL the primary, "
        f"promote the standby {FAILOVER_PROMOTE_AFTER_SECONDS:g} s later",
        database_failover,
    ),
]
