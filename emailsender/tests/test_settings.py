"""Settings.from_env: defaults, every problem at once, secrets masked."""

from __future__ import annotations

import pytest

from emailsender import topology
from emailsender.settings import Settings, SettingsError, mask_url_password

BROKER = {"RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:5672/"}


def test_defaults():
    settings = Settings.from_env(BROKER)
    assert settings.rabbitmq_url == BROKER["RABBITMQ_URL"]
    assert settings.sendgrid_api_key is None
    assert settings.sendgrid_api_host == "https://api.sendgrid.com"
    assert settings.sendgrid_timeout_seconds == 10
    assert settings.outbox_dir == "var/outbox"
    assert (settings.concurrency, settings.prefetch) == (32, 256)
    assert (settings.max_attempts, settings.retry_base_seconds, settings.retry_max_seconds) == (5, 2, 600)
    assert settings.queue_prefix == "emails"
    assert settings.shutdown_seconds == 25
    assert settings.breaker_cool_down_seconds == 30
    assert settings.retry_delays_ms == topology.DEFAULT_RETRY_DELAYS_MS


def test_values_are_read_and_prefetch_follows_concurrency():
    settings = Settings.from_env(
        {
            **BROKER,
            "SENDGRID_API_KEY": " SG.abc ",
            "SENDGRID_API_HOST": "http://127.0.0.1:8025/",
            "SENDGRID_TIMEOUT_SECONDS": "2.5",
            "SENDER_CONCURRENCY": "8",
            "SEND_MAX_ATTEMPTS": "3",
            "RETRY_BASE_SECONDS": "0.2",
            "RETRY_MAX_SECONDS": "1",
            "QUEUE_PREFIX": "staging.emails",
            "SENDER_SHUTDOWN_SECONDS": "0",
            "BREAKER_COOL_DOWN_SECONDS": "5",
        }
    )
    assert settings.sendgrid_api_key == "SG.abc"
    assert settings.breaker_cool_down_seconds == 5
    assert settings.sendgrid_api_host == "http://127.0.0.1:8025"
    assert (settings.concurrency, settings.prefetch) == (8, 64)
    assert settings.retry_delays_ms == (200, 800, 1000, 10_000, 60_000)
    assert Settings.from_env({**BROKER, "SENDER_CONCURRENCY": "8", "SENDER_PREFETCH": "9"}).prefetch == 9


def test_every_problem_is_reported_at_once():
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(
            {
                "SENDER_CONCURRENCY": "0",
                "SENDER_PREFETCH": "lots",
                "SENDGRID_TIMEOUT_SECONDS": "inf",
                "SENDGRID_API_HOST": "api.sendgrid.com",
                "RETRY_BASE_SECONDS": "10",
                "RETRY_MAX_SECONDS": "5",
                "QUEUE_PREFIX": "bad prefix",
                "SEND_MAX_ATTEMPTS": "-1",
                "BREAKER_COOL_DOWN_SECONDS": "0",
            }
        )
    problems = raised.value.problems
    assert [p.split(" ")[0] for p in problems] == [
        "RABBITMQ_URL",
        "SENDGRID_API_HOST",
        "SENDER_CONCURRENCY",
        "SENDER_PREFETCH",
        "RETRY_MAX_SECONDS",
        "QUEUE_PREFIX",
        "SENDGRID_TIMEOUT_SECONDS",
        "BREAKER_COOL_DOWN_SECONDS",
        "SEND_MAX_ATTEMPTS",
    ]
    assert str(raised.value).startswith("Invalid sender configuration: RABBITMQ_URL is required")


def test_embedded_mode_needs_no_broker_but_checks_its_scheme():
    assert Settings.from_env({}, require_broker=False).rabbitmq_url is None
    with pytest.raises(SettingsError, match="RABBITMQ_URL must be amqp:// or amqps:// URLs"):
        Settings.from_env({"RABBITMQ_URL": "http://u:secret@host/"}, require_broker=False)


def test_secrets_never_appear_in_repr_or_errors():
    settings = Settings.from_env({"RABBITMQ_URL": "amqp://user:hunter2@rabbit:5672/", "SENDGRID_API_KEY": "SG.secret"})
    shown = repr(settings)
    assert "hunter2" not in shown and "SG.secret" not in shown
    assert "sendgrid_api_key='***'" in shown and "amqp://user:***@rabbit:5672/" in shown
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"RABBITMQ_URL": "redis://user:hunter2@rabbit/"})
    assert "hunter2" not in str(raised.value)


def test_mask_url_password():
    assert mask_url_password("amqp://guest:guest@localhost:5672/%2F") == "amqp://guest:***@localhost:5672/%2F"
    assert mask_url_password("amqp://localhost/") == "amqp://localhost/"


def test_the_liveness_file_is_unset_by_default_and_its_age_limit_is_checked():
    assert (Settings.from_env(BROKER).liveness_file, Settings.from_env(BROKER).liveness_max_age_seconds) == (None, 60)
    settings = Settings.from_env({**BROKER, "LIVENESS_FILE": "/tmp/liveness", "LIVENESS_MAX_AGE_SECONDS": "2.5"})
    assert (settings.liveness_file, settings.liveness_max_age_seconds) == ("/tmp/liveness", 2.5)
    with pytest.raises(SettingsError, match="LIVENESS_MAX_AGE_SECONDS must be a number"):
        Settings.from_env({**BROKER, "LIVENESS_MAX_AGE_SECONDS": "0"})


def test_queue_type_is_quorum_unless_classic_is_asked_for():
    base = {"RABBITMQ_URL": "amqp://rabbit/"}
    assert Settings.from_env(base).queue_type == "quorum"
    assert Settings.from_env({**base, "RABBITMQ_QUEUE_TYPE": "Classic"}).queue_type == "classic"
    with pytest.raises(SettingsError, match="RABBITMQ_QUEUE_TYPE must be quorum or classic"):
        Settings.from_env({**base, "RABBITMQ_QUEUE_TYPE": "stream"})
