"""Deployment hardening: check --deploy, HTTPS settings, security headers, CORS, password hashing."""

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import global_settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import Client, override_settings

from emailsystem.users.tests.factories import DEFAULT_PASSWORD

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.django_db


def manifest_config() -> dict[str, str]:
    """The non-secret settings every production pod gets (manifests/base/config/config.env)."""
    lines = (ROOT / "manifests/base/config/config.env").read_text().splitlines()
    pairs = [line.split("=", 1) for line in lines if line.strip() and not line.startswith("#")]
    return {name.strip(): value.strip() for name, value in pairs}


# What a production pod has: the base manifests' config, a real secret, DEBUG off.
PRODUCTION_ENV = {
    **manifest_config(),
    "DJANGO_SETTINGS_MODULE": "emailsystem.settings",
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "k7#Qv9!pZ2@xR4$mN8^wL1&cT6*yH3(eB5)uJ0-gF7+dS2=aK9_oI4",
    "DATABASE_URL": "sqlite:////nonexistent/unused.sqlite3",  # check --deploy opens no connection
}


def production_process(args: list[str], **overrides: str | None) -> subprocess.CompletedProcess:
    """Run a Python command with the production settings, not the test suite's (None unsets a variable)."""
    inherited = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "TOKEN_"))}
    merged: dict[str, str | None] = {**inherited, **PRODUCTION_ENV, **overrides}
    env = {key: value for key, value in merged.items() if value is not None}
    return subprocess.run(
        [sys.executable, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


# Imports the settings module afresh once per variant of the environment, all in one process.
_SETTINGS_SCRIPT = """
import importlib, json, os, sys
variants, names = json.loads(sys.argv[1]), json.loads(sys.argv[2])
start, answers = dict(os.environ), {}
for label, overrides in variants.items():
    os.environ.clear()
    os.environ.update(start)
    for key, value in overrides.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    sys.modules.pop("emailsystem.settings", None)  # a fresh module: reload() would keep old names
    module = importlib.import_module("emailsystem.settings")
    answers[label] = {name: getattr(module, name, "<django default>") for name in names}
print(json.dumps(answers))
"""


def production_settings(names: list[str], **variants: dict[str, str | None]) -> dict[str, dict]:
    """{variant: {name: value}} as emailsystem/settings.py computes them from PRODUCTION_ENV plus
    each variant's overrides (None unsets a variable)."""
    result = production_process(["-c", _SETTINGS_SCRIPT, json.dumps(variants), json.dumps(names)])
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def check_deploy(**overrides: str) -> subprocess.CompletedProcess:
    return production_process(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **overrides)


def webhook_public_key() -> str:
    """A fresh P-256 public key in SendGrid's format: production sets the webhook's key."""
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return base64.b64encode(
        key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    ).decode()


def test_check_deploy_is_clean_with_production_settings():
    result = check_deploy(SENDGRID_WEBHOOK_PUBLIC_KEY=webhook_public_key())

    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_check_deploy_warns_while_the_webhook_has_no_key():
    """Production without SendGrid's key records no delivery events: the check says so."""
    result = check_deploy(SENDGRID_WEBHOOK_PUBLIC_KEY="")

    assert result.returncode == 1
    assert "emails.W001" in result.stderr + result.stdout


def test_check_deploy_fails_when_https_is_turned_off(settings):
    """The check above can fail: the suite's own settings run plain HTTP, which it flags."""
    assert not settings.SECURE_SSL_REDIRECT

    with pytest.raises(SystemCheckError) as failure:
        call_command("check", deploy=True, fail_level="WARNING")

    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in str(failure.value)


def test_production_settings_hash_passwords_with_djangos_default(user):
    """test_settings swaps in MD5 for speed; production must keep Django's default list."""
    configured = production_settings(["PASSWORD_HASHERS"], production={})["production"]["PASSWORD_HASHERS"]
    production = global_settings.PASSWORD_HASHERS

    assert configured == "<django default>", "production settings must not override the hashers"
    with override_settings(PASSWORD_HASHERS=production):
        client = Client()
        response = client.post(
            "/api/v1/users/register/",
            {"email": "hash@example.com", "username": "hash", "password": "plum-orchard-lantern-7"},
            content_type="application/json",
        )
        assert response.status_code == 201
        stored = get_user_model().objects.get(email="hash@example.com").password
        assert stored.startswith("pbkdf2_sha256$"), stored.split("$")[0]
        assert int(stored.split("$")[1]) >= 1_000_000, "Django 5.2's default iteration count or more"


def test_an_api_response_carries_the_security_headers(user_client):
    response = user_client.get("/api/v1/emails/sent-email/")

    assert response.status_code == 200
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"


@override_settings(SECURE_SSL_REDIRECT=True, SECURE_HSTS_SECONDS=31_536_000, SECURE_HSTS_INCLUDE_SUBDOMAINS=True)
def test_with_https_on_plain_http_is_redirected_and_https_gets_hsts():
    client = Client()

    plain = client.get("/api/v1/", HTTP_HOST="localhost")
    secure = client.get("/api/v1/", secure=True)
    probe = client.get("/healthz")

    assert plain.status_code == 301 and plain["Location"] == "https://localhost/api/v1/"
    assert secure.status_code == 200
    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert probe.status_code == 200, "probes are exempt from the redirect"


def test_plain_http_gets_no_hsts_header(client):
    assert "Strict-Transport-Security" not in client.get("/api/v1/").headers


def test_x_forwarded_proto_is_not_trusted_by_default(settings):
    settings.SECURE_SSL_REDIRECT = True
    response = Client().get("/api/v1/", HTTP_X_FORWARDED_PROTO="https")

    assert response.status_code == 301, "a client must not be able to claim HTTPS"


# Nothing set: the code's own defaults.
UNSET_HTTPS = dict.fromkeys(["DJANGO_HTTPS", "DJANGO_TRUST_X_FORWARDED_PROTO", "DJANGO_HSTS_SECONDS"])
# What the minikube overlay sets (manifests/overlays/minikube/kustomization.yaml).
MINIKUBE_HTTP = {"DJANGO_HTTPS": "0", "DJANGO_TRUST_X_FORWARDED_PROTO": "0", "DJANGO_HSTS_SECONDS": "0"}
HTTPS_SETTINGS = ["SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS"]


def test_https_settings_follow_the_environment_and_default_to_on_outside_debug():
    answers = production_settings(
        [*HTTPS_SETTINGS, "SECURE_PROXY_SSL_HEADER", "DEBUG"],
        production={},
        default=UNSET_HTTPS,
        plain_http=MINIKUBE_HTTP,
        debug=UNSET_HTTPS | {"DJANGO_DEBUG": "1"},
    )
    production, default, plain_http, debug = (answers[key] for key in ("production", "default", "plain_http", "debug"))
    off = dict.fromkeys(HTTPS_SETTINGS, False) | {
        "SECURE_HSTS_SECONDS": 0,
        "SECURE_PROXY_SSL_HEADER": "<django default>",
    }

    assert production == {
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31_536_000,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "DEBUG": False,
    }
    assert default == production | {"SECURE_PROXY_SSL_HEADER": "<django default>"}
    assert plain_http == off | {"DEBUG": False}
    assert debug == off | {"DEBUG": True}


@pytest.mark.parametrize(
    ("method", "headers"),
    [
        (
            "options",
            {"HTTP_ACCESS_CONTROL_REQUEST_METHOD": "POST", "HTTP_ACCESS_CONTROL_REQUEST_HEADERS": "authorization"},
        ),
        ("get", {}),
    ],
    ids=["preflight", "get"],
)
def test_cors_is_closed_cross_origin_requests_get_no_allow_headers(user_client, method, headers):
    path = "/api/v1/emails/sent-email/"

    response = getattr(user_client, method)(path, HTTP_ORIGIN="https://evil.example", **headers)

    assert not [name for name in response.headers if name.lower().startswith("access-control-")]


def test_csrf_is_enforced_for_session_writes(user):
    browser = Client(enforce_csrf_checks=True)
    login_page = browser.get("/api-auth/login/")
    browser.post(
        "/api-auth/login/",
        {
            "username": user.email,
            "password": DEFAULT_PASSWORD,
            "csrfmiddlewaretoken": login_page.cookies["csrftoken"].value,
        },
    )
    body = {"recipients": ["a@example.com"], "subject": "s", "body": "b"}

    without = browser.post("/api/v1/emails/sent-email/", body, content_type="application/json")
    with_token = browser.post(
        "/api/v1/emails/sent-email/",
        body,
        content_type="application/json",
        HTTP_X_CSRFTOKEN=browser.cookies["csrftoken"].value,
    )

    assert without.status_code == 403 and "CSRF" in without.json()["detail"]
    assert with_token.status_code == 202


def test_the_minikube_overlay_keeps_plain_http_and_the_base_asks_for_https():
    overlay = (ROOT / "manifests/overlays/minikube/kustomization.yaml").read_text()
    component = (ROOT / "manifests/components/minikube/kustomization.yaml").read_text()

    assert manifest_config()["DJANGO_HTTPS"] == "1"
    assert "../../components/minikube" in overlay
    assert all(f"- {name}={value}" in component for name, value in MINIKUBE_HTTP.items())
