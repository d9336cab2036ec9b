"""A send's receipt: the plain data an Idempotency-Key stores, and the 202 answer built from it."""

import pytest

from emailsystem.emails.models import Delivery, IdempotencyRecord

URL = "/api/v1/emails/sent-email/"
pytestmark = pytest.mark.django_db
PAYLOAD = {"recipients": ["a@example.com", "b@example.com"], "subject": "s", "body": "b"}


def test_the_key_stores_the_receipt_not_the_http_answer(user_client):
    answer = user_client.post(URL, PAYLOAD, format="json", HTTP_IDEMPOTENCY_KEY="k-1").json()

    (receipt,) = IdempotencyRecord.objects.get(key="k-1").response["receipts"]
    assert "message" not in receipt
    assert receipt["email_id"] == answer["id"]
    deliveries = dict(Delivery.objects.filter(sent_email_id=answer["id"]).values_list("recipient__email", "id"))
    assert receipt["recipients"] == [[address, deliveries[address], "queued"] for address in PAYLOAD["recipients"]]


def test_a_key_stored_with_the_http_answer_still_replays_it(user_client, user):
    # Records written before receipts were stored hold the 202 answer itself; they live 24 hours.
    first = user_client.post(URL, PAYLOAD, format="json", HTTP_IDEMPOTENCY_KEY="old-1")
    record = IdempotencyRecord.objects.get(key="old-1")
    record.response = first.json()
    record.save()

    again = user_client.post(URL, PAYLOAD, format="json", HTTP_IDEMPOTENCY_KEY="old-1")

    assert again.status_code == 202
    assert again.json() == first.json()
