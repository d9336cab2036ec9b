"""The SendGrid webhook's rate per source address (THROTTLE_SENDGRID_WEBHOOK), counted before the
signature is verified: past it a request is 429 with Retry-After and its signature never checked."""

import json

import pytest
from django.test import Client

from emailsender.testing.fake_events import EventEmitter
from emailsystem.emails.webhooks import views

pytestmark = pytest.mark.django_db
URL = "/api/v1/webhooks/sendgrid/"
EMPTY_BATCH = json.dumps([]).encode()


@pytest.fixture(scope="module")
def signer():
    return EventEmitter(fake=None)  # signing needs no fake server


@pytest.fixture(autouse=True)
def three_a_minute(settings, signer):
    settings.SENDGRID_WEBHOOK_PUBLIC_KEY = signer.public_key()
    settings.THROTTLE_SENDGRID_WEBHOOK = (3, 60)


@pytest.fixture
def verified(monkeypatch):
    """Every call of the signature check the view makes, recorded; the check itself still runs."""
    calls: list[bytes] = []
    real = views.signature_verify

    def counting(**kwargs):
        calls.append(kwargs["body"])
        return real(**kwargs)

    monkeypatch.setattr(views, "signature_verify", counting)
    return calls


def post(client: Client, headers: dict[str, str] | None = None, **extra):
    return client.post(URL, EMPTY_BATCH, content_type="application/json", headers=headers or {}, **extra)


def test_past_the_rate_a_signed_batch_is_429_with_retry_after_and_its_signature_is_never_checked(signer, verified):
    client = Client(REMOTE_ADDR="203.0.113.20")

    statuses = [post(client, signer.sign(EMPTY_BATCH)).status_code for _ in range(3)]
    refused = post(client, signer.sign(EMPTY_BATCH))

    assert statuses == [200, 200, 200]
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 60
    assert refused.json()["code"] == "throttled"
    assert len(verified) == 3, "the fourth request must be refused before its signature is verified"


def test_unsigned_requests_count_too_so_a_flood_of_them_stops_before_the_verifier(verified):
    client = Client(REMOTE_ADDR="203.0.113.21")

    statuses = [post(client).status_code for _ in range(6)]

    assert statuses == [403, 403, 403, 429, 429, 429]
    assert len(verified) == 3


def test_each_source_address_has_its_own_allowance(signer, verified):
    flooding = Client(REMOTE_ADDR="203.0.113.22")
    for _ in range(4):
        post(flooding)

    other = post(Client(REMOTE_ADDR="198.51.100.7"), signer.sign(EMPTY_BATCH))

    assert other.status_code == 200
    assert len(verified) == 4


def test_an_invented_x_forwarded_for_buys_nothing_unless_num_proxies_says_a_proxy_adds_it(settings, verified):
    client = Client(REMOTE_ADDR="203.0.113.23")
    direct = [post(client, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code for n in range(4)]

    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    proxy = Client(REMOTE_ADDR="10.0.0.1")  # every request arrives from the proxy's address
    forwarded = [post(proxy, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code for n in range(4)]

    assert direct == [403, 403, 403, 429]
    assert forwarded == [403, 403, 403, 403]
