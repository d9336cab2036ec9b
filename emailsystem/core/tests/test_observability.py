"""Request ids, /metrics and its access rule, and the counters the send path feeds."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from emailsystem.core import metrics
from emailsystem.emails.delivery.dispatcher import dispatcher

ROOT = Path(__file__).resolve().parents[3]
URL = "/api/v1/emails/sent-email/"
UNREACHABLE = "amqp://guest:guest@127.0.0.1:1/"


def value(name, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def send(client, recipients, **headers):
    return client.post(URL, {"recipients": recipients, "subject": "s", "body": "b"}, format="json", **headers)


@pytest.mark.django_db
def test_a_sane_client_request_id_is_returned_and_anything_else_is_replaced(client):
    assert client.get("/healthz", HTTP_X_REQUEST_ID="abc-123.x:y_z")["X-Request-ID"] == "abc-123.x:y_z"
    for bad in ("has space", "x" * 129, 'quote"', "new\nline"):
        returned = client.get("/healthz", HTTP_X_REQUEST_ID=bad)["X-Request-ID"]
        assert returned != bad and len(returned) == 32
    generated = {client.get("/healthz")["X-Request-ID"] for _ in range(3)}
    assert len(generated) == 3


@pytest.mark.django_db
def test_requests_are_counted_by_route_name_method_and_status_never_by_raw_path(user_client):
    before = value("emailsystem_http_requests_total", route="emails:sent-email-detail", method="GET", status="404")
    user_client.get(URL + "987654321/")
    user_client.get("/no/such/page/")
    after = value("emailsystem_http_requests_total", route="emails:sent-email-detail", method="GET", status="404")
    assert after == before + 1
    assert value("emailsystem_http_request_duration_seconds_count", route="emails:sent-email-detail", method="GET") >= 1
    text = user_client.get("/metrics").content.decode()
    assert 'route="unmatched"' in text and "987654321" not in text and "/no/such/page/" not in text


@pytest.mark.django_db
def test_invented_methods_share_one_other_series_and_grow_no_cache(client):
    before = value("emailsystem_http_requests_total", route="healthz", method="other", status="200")
    client.generic("INVENTED0", "/healthz")
    cached = len(metrics._request_series)
    for n in range(1, 50):
        client.generic(f"INVENTED{n}", "/healthz")

    assert value("emailsystem_http_requests_total", route="healthz", method="other", status="200") == before + 50
    assert len(metrics._request_series) == cached


@pytest.mark.django_db
def test_metrics_are_served_to_direct_private_connections_and_refused_through_a_proxy(client, settings):
    settings.METRICS_TOKEN = ""
    response = client.get("/metrics", REMOTE_ADDR="10.1.2.3")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    assert b"emailsystem_http_requests_total" in response.content
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3", HTTP_X_FORWARDED_FOR="198.51.100.77").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="8.8.8.8").status_code == 403
    # Served before host validation: Prometheus scrapes the pod's IP, which ALLOWED_HOSTS does not list.
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3", HTTP_HOST="10.1.2.3:8000").status_code == 200


@pytest.mark.django_db
def test_with_a_metrics_token_only_its_bearer_may_read(client, settings):
    settings.METRICS_TOKEN = "scrape-secret-value"
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    response = client.get("/metrics", REMOTE_ADDR="198.51.100.77", HTTP_AUTHORIZATION="Bearer scrape-secret-value")
    assert response.status_code == 200


@pytest.mark.django_db
def test_accepted_sends_count_emails_and_recipients_once_and_a_replay_counts_nothing(user_client):
    emails, recipients = value("emailsystem_emails_accepted_total"), value("emailsystem_recipients_accepted_total")
    assert send(user_client, ["a@example.com", "b@example.com", "c@example.com"]).status_code == 202
    assert send(user_client, ["a@example.com"], HTTP_IDEMPOTENCY_KEY="k1").status_code == 202
    assert send(user_client, ["a@example.com"], HTTP_IDEMPOTENCY_KEY="k1").status_code == 202  # the replay
    assert send(user_client, []).status_code == 400
    assert value("emailsystem_emails_accepted_total") == emails + 2
    assert value("emailsystem_recipients_accepted_total") == recipients + 4


@pytest.mark.django_db(transaction=True)
def test_a_publish_the_broker_refuses_is_counted_as_a_queue_publish_failure(user_client, settings):
    settings.RABBITMQ_URL = UNREACHABLE
    before = value("emailsystem_queue_publish_failures_total", publisher="dispatcher")
    assert send(user_client, ["a@example.com"]).status_code == 202
    assert dispatcher().flush()
    assert value("emailsystem_queue_publish_failures_total", publisher="dispatcher") == before + 1


def test_in_multiprocess_mode_metrics_adds_up_every_worker_and_keeps_a_dead_workers_counts(tmp_path):
    """What gunicorn.conf.py sets up: two 'workers' write files, a third process serves the sum."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    worker = "from emailsystem.core import metrics; metrics.sends_accepted(recipients=3)"
    for _ in range(2):
        subprocess.run([sys.executable, "-c", worker], env=env, cwd=ROOT, check=True, timeout=60)
    assert len(list(tmp_path.glob("counter_*.db"))) == 2
    scrape = "import sys; from emailsystem.core import metrics; sys.stdout.write(metrics.exposition()[0].decode())"
    text = subprocess.run(
        [sys.executable, "-c", scrape], env=env, cwd=ROOT, check=True, timeout=60, capture_output=True, text=True
    ).stdout
    assert "emailsystem_emails_accepted_total 2.0" in text
    assert "emailsystem_recipients_accepted_total 6.0" in text


def test_gunicorn_start_removes_only_prometheus_files_from_a_named_metrics_directory(tmp_path, monkeypatch):
    """PROMETHEUS_MULTIPROC_DIR may be a folder the operator named: only the metrics files go."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))  # named: gunicorn.conf.py makes none
    spec = importlib.util.spec_from_file_location("gunicorn_conf_under_test", ROOT / "gunicorn.conf.py")
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    for name in ("counter_101.db", "histogram_101.db", "gauge_livesum_102.db"):
        (tmp_path / name).write_bytes(b"old run")
    (tmp_path / "notes.txt").write_text("the operator's")
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "data.db").write_text("the operator's")

    conf.on_starting(server=None)

    assert sorted(path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*")) == [
        "keep",
        "keep/data.db",
        "notes.txt",
    ]
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(tmp_path)
