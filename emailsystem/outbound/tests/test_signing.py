"""Signatures a Standard Webhooks verifier (the `standardwebhooks` package) accepts, and stored secrets."""

import base64
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from emailsystem.outbound.delivery import attempt_post
from emailsystem.outbound.signing import (
    SecretUnreadable,
    secret_decrypt,
    secret_encrypt,
    secret_generate,
    signature_header,
)
from emailsystem.outbound.tests.receiver import Receiver


def test_a_secret_is_whsec_and_base64_of_at_least_24_bytes():
    secret = secret_generate()

    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) >= 24
    assert secret_generate() != secret


def test_the_standard_verifier_accepts_our_signature_and_refuses_a_changed_body():
    secret = secret_generate()
    body = b'{"type":"email.sent"}'
    timestamp = int(time.time())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header([secret], "msg_1", timestamp, body),
    }

    assert Webhook(secret).verify(body, headers) == {"type": "email.sent"}
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"type":"email.failed"}', headers)


def test_two_secrets_sign_twice_and_each_verifies(settings):
    settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE = True
    old, new = secret_generate(), secret_generate()
    with Receiver() as receiver:
        result = attempt_post(url=receiver.url, secrets=[new, old], webhook_id="msg_2", body='{"a":1}')
        [request] = receiver.wait_for(1)

    assert result.succeeded
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        assert Webhook(secret).verify(request.body, request.headers) == {"a": 1}
    with pytest.raises(WebhookVerificationError):
        Webhook(secret_generate()).verify(request.body, request.headers)


def test_stored_secrets_are_encrypted_and_need_the_same_secret_key(settings):
    secret = secret_generate()
    stored = secret_encrypt(secret)

    assert secret not in stored and secret.removeprefix("whsec_") not in stored
    assert secret_decrypt(stored) == secret
    settings.SECRET_KEY = "another-key"
    with pytest.raises(SecretUnreadable):
        secret_decrypt(stored)
