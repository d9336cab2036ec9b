"""POST /api/v1/webhooks/sendgrid/: signatures, parsing, and what a batch does to statuses.

Batches are signed with the fake SendGrid's own signer (emailsender.testing.fake_events),
whose key pair is generated per test run.
"""

import datetime
import itertools
import json
import time

import pytest
from cryptography.hazmat.primitives import serialization
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import Client

from emailsender.testing.fake_events import SIGNATURE_HEADER, EventEmitter
from emailsystem.emails.delivery.results import delivery_results_apply
from emailsystem.emails.models import DeliveryEvent, DeliveryStatus, EmailStatus, Suppression, SuppressionReason
from emailsystem.emails.tests.factories import sent_email
from emailsystem.emails.tests.test_delivery_results import result

pytestmark = pytest.mark.django_db
URL = "/api/v1/webhooks/sendgrid/"
_ids = itertools.count()


@pytest.fixture(scope="module")
def signer():
    return EventEmitter(fake=None)  # signing needs no fake server


@pytest.fixture(autouse=True)
def webhook_key(settings, signer):
    settings.SENDGRID_WEBHOOK_PUBLIC_KEY = signer.public_key()
    settings.SENDGRID_WEBHOOK_MAX_AGE_SECONDS = 600


def event(delivery, kind, *, at=0, **fields):
    """A SendGrid event about `delivery`, `at` seconds after a fixed moment, with our custom_args."""
    return {
        "email": delivery.recipient.email,
        "timestamp": 1_795_000_000 + at,
        "event": kind,
        "sg_event_id": f"evt-{next(_ids)}",
        "sg_message_id": "msg.filter0001",
        "delivery_id": str(delivery.pk),
        "email_id": str(delivery.sent_email_id),
        **fields,
    }


def post(client, signer, events=None, *, body=None, headers=None, timestamp=None):
    raw = json.dumps(events).encode() if body is None else body
    signed = signer.sign(raw, timestamp) if headers is None else headers
    return client.post(URL, raw, content_type="application/json", headers=signed)


def state(delivery):
    delivery.refresh_from_db()
    return delivery.status


@pytest.fixture
def email():
    email = sent_email(recipients=["a@example.com", "b@example.com"])
    delivery_results_apply(results=[result(email, "sent")])
    return email


@pytest.fixture
def first(email):
    return email.deliveries.select_related("recipient").order_by("pk")[0]


@pytest.fixture
def second(email):
    return email.deliveries.select_related("recipient").order_by("pk")[1]


def test_a_signed_batch_moves_statuses_and_records_the_history(client, signer, email, first, second):
    events = [event(first, "processed"), event(first, "delivered", at=1), event(first, "open", at=2)]
    events += [event(second, "processed"), event(second, "delivered", at=1)]

    response = post(client, signer, events)

    assert response.status_code == 200
    assert response.json() == {"received": 5, "applied": 5, "duplicates": 0, "unknown": 0, "ignored": 0}
    assert (state(first), state(second)) == (DeliveryStatus.OPENED, DeliveryStatus.DELIVERED)
    assert first.delivered_at == datetime.datetime.fromtimestamp(1_795_000_001, tz=datetime.UTC)
    assert list(first.events.values_list("event", flat=True)) == ["processed", "delivered", "open"]
    email.refresh_from_db()
    assert email.status == EmailStatus.DELIVERED


def test_a_late_delivered_after_an_open_keeps_opened_but_records_the_delivery(client, signer, first):
    post(client, signer, [event(first, "open", at=5)])
    response = post(client, signer, [event(first, "delivered", at=2), event(first, "processed", at=1)])

    assert response.json()["applied"] == 2
    assert state(first) == DeliveryStatus.OPENED
    assert first.delivered_at == datetime.datetime.fromtimestamp(1_795_000_002, tz=datetime.UTC)
    assert first.events.count() == 3


def test_the_same_batch_twice_changes_nothing_the_second_time(client, signer, first):
    events = [event(first, "delivered"), event(first, "click", at=3, url="https://example.com/x")]
    post(client, signer, events)
    first.refresh_from_db()
    before = (first.status, first.delivered_at, first.updated)

    again = post(client, signer, events + events)  # SendGrid redelivers, even within a batch

    assert again.json() == {"received": 4, "applied": 0, "duplicates": 4, "unknown": 0, "ignored": 0}
    first.refresh_from_db()
    assert (first.status, first.delivered_at, first.updated) == before
    assert DeliveryEvent.objects.count() == 2
    assert first.events.get(event="click").detail == "https://example.com/x"


def test_a_hard_bounce_fails_the_recipient_and_suppresses_the_address_for_that_sender(
    client, signer, email, first, second
):
    post(client, signer, [event(first, "delivered"), event(second, "bounce", type="bounce", reason="550 no such user")])

    assert state(second) == DeliveryStatus.BOUNCED
    assert second.reason == "550 no such user"
    email.refresh_from_db()
    assert email.status == EmailStatus.PARTIAL
    [entry] = Suppression.objects.all()
    assert (entry.user_id, entry.recipient_id, entry.reason) == (
        email.sender_id,
        second.recipient_id,
        SuppressionReason.BOUNCE,
    )


def test_a_blocked_bounce_is_recorded_but_suppresses_nothing(client, signer, first):
    post(client, signer, [event(first, "bounce", type="blocked", reason="421 try later")])

    assert state(first) == DeliveryStatus.BOUNCED
    assert not Suppression.objects.exists()


@pytest.mark.parametrize(
    ("kind", "status", "reason"),
    [
        ("spamreport", DeliveryStatus.SPAM_REPORTED, SuppressionReason.SPAM_REPORT),
        ("unsubscribe", DeliveryStatus.UNSUBSCRIBED, SuppressionReason.UNSUBSCRIBE),
        ("group_unsubscribe", DeliveryStatus.UNSUBSCRIBED, SuppressionReason.UNSUBSCRIBE),
    ],
)
def test_a_complaint_or_unsubscribe_after_an_open_wins_and_suppresses(client, signer, first, kind, status, reason):
    post(client, signer, [event(first, "open"), event(first, kind, at=60)])

    assert state(first) == status
    assert Suppression.objects.get().reason == reason


def test_every_event_kind_maps_to_its_status(client, signer):
    kinds = {
        "processed": DeliveryStatus.PROCESSED,
        "deferred": DeliveryStatus.DEFERRED,
        "delivered": DeliveryStatus.DELIVERED,
        "bounce": DeliveryStatus.BOUNCED,
        "dropped": DeliveryStatus.DROPPED,
        "open": DeliveryStatus.OPENED,
        "click": DeliveryStatus.CLICKED,
        "spamreport": DeliveryStatus.SPAM_REPORTED,
        "unsubscribe": DeliveryStatus.UNSUBSCRIBED,
    }
    email = sent_email(recipients=[f"{kind}@example.com" for kind in kinds])
    deliveries = list(email.deliveries.select_related("recipient").order_by("pk"))

    post(client, signer, [event(delivery, kind) for delivery, kind in zip(deliveries, kinds, strict=True)])

    assert [state(delivery) for delivery in deliveries] == list(kinds.values())


def test_events_of_other_senders_unknown_ids_and_unknown_kinds_are_counted_not_errors(client, signer, first):
    foreign = {"email": "x@example.com", "timestamp": 1_795_000_000, "event": "delivered", "sg_event_id": "f1"}
    missing = event(first, "delivered") | {"delivery_id": "999999999"}
    wrong_email = event(first, "delivered") | {"email_id": str(first.sent_email_id + 1000)}
    unknown_kind = event(first, "group_resubscribe")
    incomplete = event(first, "open") | {"sg_event_id": ""}

    response = post(client, signer, [foreign, missing, wrong_email, unknown_kind, incomplete, "not an object"])

    assert response.status_code == 200
    assert response.json() == {"received": 6, "applied": 0, "duplicates": 0, "unknown": 3, "ignored": 3}
    assert state(first) == DeliveryStatus.SENT
    assert not DeliveryEvent.objects.exists()


def test_an_event_for_a_recipient_still_queued_moves_it_on(client, signer):
    delivery = sent_email(recipients=["q@example.com"]).deliveries.select_related("recipient").get()

    post(client, signer, [event(delivery, "delivered")])

    assert state(delivery) == DeliveryStatus.DELIVERED


# --- refusals ----------------------------------------------------------------------------


def test_an_unsigned_batch_is_refused_and_changes_nothing(client, signer, first):
    response = post(client, signer, [event(first, "delivered")], headers={})

    assert response.status_code == 403
    assert response.json()["code"] == "invalid_signature"
    assert state(first) == DeliveryStatus.SENT
    assert not DeliveryEvent.objects.exists()


def test_a_tampered_batch_is_refused(client, signer, first):
    original = json.dumps([event(first, "delivered")]).encode()
    headers = signer.sign(original)

    response = post(client, signer, body=original.replace(b"delivered", b"spamreport"), headers=headers)

    assert response.status_code == 403
    assert state(first) == DeliveryStatus.SENT


def test_a_signature_by_another_key_is_refused(client, first):
    response = post(client, EventEmitter(fake=None), [event(first, "delivered")])

    assert response.status_code == 403


@pytest.mark.parametrize("offset", [-601, 601])
def test_a_stale_or_future_timestamp_is_refused(client, signer, first, offset):
    response = post(client, signer, [event(first, "delivered")], timestamp=int(time.time()) + offset)

    assert response.status_code == 403


def test_a_timestamp_inside_the_window_is_accepted(client, signer, first):
    response = post(client, signer, [event(first, "delivered")], timestamp=int(time.time()) - 590)

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("signature", "timestamp"),
    [
        ("bm90IGEgc2lnbmF0dXJl", "now"),  # base64, but not a DER signature
        ("!!!", "now"),  # not base64
        ("A" * 500, "now"),  # longer than any signature
        (None, "x"),  # a valid signature, a timestamp that is not a number
        (None, "-5"),
        (None, "9" * 400),  # digits only, but too large for the age arithmetic (was a 500)
        (None, "9" * 5000),  # past Python's int-from-string digit limit (was a 500)
    ],
)
def test_malformed_signature_headers_are_refused(client, signer, first, signature, timestamp):
    raw = json.dumps([event(first, "delivered")]).encode()
    now = str(int(time.time()))
    headers = {
        "X-Twilio-Email-Event-Webhook-Signature": signature or signer.sign(raw, int(now))[SIGNATURE_HEADER],
        "X-Twilio-Email-Event-Webhook-Timestamp": now if timestamp == "now" else timestamp,
    }

    assert post(client, signer, body=raw, headers=headers).status_code == 403
    assert state(first) == DeliveryStatus.SENT


def test_without_a_configured_key_every_request_is_refused(client, signer, settings, first):
    settings.SENDGRID_WEBHOOK_PUBLIC_KEY = ""

    assert post(client, signer, [event(first, "delivered")]).status_code == 403
    assert state(first) == DeliveryStatus.SENT


def test_a_pem_copy_of_the_key_works_too(client, signer, settings, first):
    from emailsystem.emails.webhooks.signature import public_key_load

    pem = public_key_load(signer.public_key()).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    settings.SENDGRID_WEBHOOK_PUBLIC_KEY = pem.decode()

    assert post(client, signer, [event(first, "delivered")]).status_code == 200


@pytest.mark.parametrize("body", [b"{not json", b'{"event": "delivered"}', b"\xff\xfe", b"[" * 100_000])
def test_a_signed_body_that_is_not_a_json_array_is_400(client, signer, body):
    response = post(client, signer, body=body)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_batch"


def test_a_body_over_the_size_limit_gets_413(client, signer, settings):
    settings.REQUEST_MAX_BYTES = 2048
    response = post(client, signer, body=b"[" + b" " * 4096 + b"]")

    assert response.status_code == 413


def test_only_post_is_allowed(client):
    assert client.get(URL).status_code == 405


def test_the_system_check_warns_without_a_key_and_fails_on_an_unusable_one(settings, capsys):
    settings.SENDGRID_WEBHOOK_PUBLIC_KEY = ""
    call_command("check")
    assert "emails.W001" in capsys.readouterr().err

    settings.SENDGRID_WEBHOOK_PUBLIC_KEY = "bm90IGEga2V5"  # base64 of "not a key"
    with pytest.raises(SystemCheckError, match=r"emails\.E001"):
        call_command("check")


def test_the_senders_result_arriving_after_an_event_records_sent_at_and_keeps_the_status(client, signer):
    email = sent_email(recipients=["q@example.com"])
    delivery = email.deliveries.select_related("recipient").get()
    post(client, signer, [event(delivery, "delivered")])

    assert delivery_results_apply(results=[result(email, "sent", attempt=2)]) == 1

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.sent_at) == (
        DeliveryStatus.DELIVERED,
        2,
        result(email, "sent").at,
    )
    assert delivery_results_apply(results=[result(email, "sent", attempt=3)]) == 0, "applied once only"


def test_the_webhook_needs_no_csrf_token_only_its_signature(signer, first):
    strict = Client(enforce_csrf_checks=True)

    assert post(strict, signer, [event(first, "delivered")]).status_code == 200


def test_admins_see_a_deliverys_events(client, admin, signer, first):
    bounce = event(first, "bounce", type="bounce", reason="550 mailbox unavailable")
    post(client, signer, [bounce])
    client.force_login(admin)

    page = client.get(f"/admin/emails/delivery/{first.pk}/change/")

    assert page.status_code == 200
    assert bounce["sg_event_id"].encode() in page.content, "the events inline lists it"
    assert b"550 mailbox unavailable" in page.content


def test_a_nul_in_a_bounce_reason_or_clicked_url_is_dropped_and_the_batch_applied(client, signer, first):
    response = post(
        client,
        signer,
        [
            event(first, "click", at=10, url="https://example.com/a\u0000b"),
            event(first, "bounce", at=20, reason="550 no\u0000such user"),
        ],
    )

    assert response.status_code == 200, response.content
    assert response.json()["applied"] == 2
    assert state(first) == DeliveryStatus.BOUNCED
    assert sorted(DeliveryEvent.objects.values_list("detail", flat=True)) == [
        "550 nosuch user",
        "https://example.com/ab",
    ]


def test_an_event_id_with_a_nul_is_ignored_and_the_rest_of_the_batch_applied(client, signer, first):
    response = post(client, signer, [event(first, "open", sg_event_id="evt\u0000x"), event(first, "delivered", at=5)])

    assert response.status_code == 200, response.content
    assert (response.json()["applied"], response.json()["ignored"]) == (1, 1)
    assert state(first) == DeliveryStatus.DELIVERED
