"""Request ids and metrics across the real processes: gunicorn (the Procfile's web command and
gunicorn.conf.py), `python -m emailsender`, `manage.py results`, RabbitMQ and the fake SendGrid.

One send made over HTTP with an X-Request-ID must be findable by that id in the JSON lines of
all three processes, and the web's and the sender's /metrics must count it.
"""

import json
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from rest_framework.authtoken.models import Token

from emailsystem.emails.models import Delivery, DeliveryStatus
from emailsystem.emails.tests.pipeline import PipelineStack, wait_until
from scripts.devstack import Process, free_port

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.rabbitmq, pytest.mark.slow]


def json_lines(process: Process) -> list[dict]:
    lines = []
    for raw in process.output().splitlines():
        try:
            item = json.loads(raw)
        except ValueError:
            continue
        if isinstance(item, dict):
            lines.append(item)
    return lines


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (127.0.0.1 only)
        return response.read().decode()


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one series in Prometheus' text format, or None when it is absent."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        series, value = line.rsplit(" ", 1)
        metric, _, label_text = series.partition("{")
        found = ",".join(sorted(label_text.rstrip("}").split(","))) if label_text else ""
        if metric == name and found == wanted:
            return float(value)
    return None


def start_web(running: PipelineStack, tmp_path: Path) -> tuple[Process, str]:
    """gunicorn as the Procfile runs it (two workers), on a free port, with its metrics directory in tmp_path."""
    port = free_port()
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"left over from an earlier run")
    env = {**running.env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "LOG_FORMAT": "json"}
    command = [sys.executable, "-m", "gunicorn", "emailsystem.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2"]
    web = running.start("web", [*command, "--access-logfile", "-"], env)
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return scrape(base + "/healthz") is not None
        except OSError:
            return False

    wait_until(answers, running, timeout=30, what="gunicorn answering")
    assert not (metrics_dir / "counter_999999.db").exists(), "on_starting must empty the metrics directory"
    return web, base


def test_one_request_id_runs_through_web_sender_and_results_and_every_metrics_endpoint_counts_the_send(
    stack,
    user,
    tmp_path,
):
    metrics_port = free_port()
    env = stack.sender_env(SENDER_METRICS_PORT=str(metrics_port), SENDER_METRICS_HOST="127.0.0.1")
    sender = stack.start("sender", env=env)
    results = stack.start("results")
    web, base = start_web(stack, tmp_path)

    token = Token.objects.create(user=user).key
    request_id = "obs-test-" + str(time.monotonic_ns())
    body = json.dumps({"recipients": ["rid@example.com", "rid2@example.org"], "subject": "s", "body": "b"}).encode()
    request = urllib.request.Request(  # noqa: S310 (127.0.0.1 only)
        base + "/api/v1/emails/sent-email/",
        data=body,
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Token {token}",
            "X-Request-ID": request_id,
            "Host": "127.0.0.1",
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        assert response.status == 202
        assert response.headers["X-Request-ID"] == request_id
        email_id = json.loads(response.read())["id"]

    wait_until(
        lambda: Delivery.objects.filter(sent_email_id=email_id, status=DeliveryStatus.SENT).count() == 2,
        stack,
        what="both recipients sent",
    )

    def lines_with_id(process: Process) -> list[dict]:
        return [line for line in json_lines(process) if line.get("request_id") == request_id]

    wait_until(lambda: lines_with_id(results), stack, what="the results process logging the request id")
    web_lines, sender_lines, results_lines = lines_with_id(web), lines_with_id(sender), lines_with_id(results)
    assert {"send accepted"} <= {line["msg"] for line in web_lines}, web.output()[-3000:]
    assert any(line["logger"] == "gunicorn.access" and line["status"] == "202" for line in web_lines)
    sent = [line for line in sender_lines if line["msg"] == "sent"]
    assert sent and sent[0]["email_id"] == email_id and sent[0]["message_id"].startswith(f"email-{email_id}.")
    applied = [line for line in results_lines if line["msg"] == "result applied"]
    assert applied and applied[0]["email_id"] == email_id and applied[0]["message_id"] == sent[0]["message_id"]
    for line in web_lines + sender_lines + results_lines:
        assert {"ts", "level", "logger", "msg"} <= line.keys()
    assert token not in web.output() + sender.output() + results.output()

    web_metrics = scrape(base + "/metrics")
    assert sample(web_metrics, "emailsystem_emails_accepted_total") == 1.0
    assert sample(web_metrics, "emailsystem_recipients_accepted_total") == 2.0
    assert (
        sample(
            web_metrics, "emailsystem_http_requests_total", route="emails:sent-email-list", method="POST", status="202"
        )
        == 1.0
    )
    assert "/api/v1/" not in web_metrics, "labels carry route names, never raw paths"

    sender_metrics = scrape(f"http://127.0.0.1:{metrics_port}/metrics")
    assert sample(sender_metrics, "emailsender_messages_total", outcome="sent") == 1.0
    assert sample(sender_metrics, "emailsender_sendgrid_request_seconds_count", result="2xx") == 1.0
    assert sample(sender_metrics, "emailsender_in_flight") == 0.0
    work_queue = f"{stack.broker.prefix}.send"
    assert sample(sender_metrics, "emailsender_queue_consumers", queue=work_queue) == 1.0
