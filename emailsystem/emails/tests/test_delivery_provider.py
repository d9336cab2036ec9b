"""Each recipient records the provider that accepted it: result message, Delivery, API log."""

import datetime
import json

import pytest

from emailsender.result_messages import build_result, encode_result, parse_result
from emailsystem.emails.delivery.results import delivery_results_apply
from emailsystem.emails.serializers.log import DeliverySerializer
from emailsystem.emails.tests.factories import sent_email

pytestmark = pytest.mark.django_db
AT = datetime.datetime(2026, 11, 22, 10, 0, tzinfo=datetime.UTC)


def sent_result(email, provider=None):
    ids = [d.pk for d in email.deliveries.all()]
    body = build_result(email_id=email.pk, delivery_ids=ids, outcome="sent", attempt=1, at=AT, provider=provider)
    return parse_result(encode_result(body))


def test_a_sent_result_records_its_provider_shown_in_the_api_log():
    email = sent_email(recipients=["a@example.com", "b@example.com"])
    delivery_results_apply(results=[sent_result(email, provider="smtp")])

    assert {d.provider for d in email.deliveries.all()} == {"smtp"}
    assert DeliverySerializer(email.deliveries.first()).data["provider"] == "smtp"


def test_a_v1_result_without_provider_is_still_applied():
    email = sent_email(recipients=["a@example.com"])
    body = build_result(email_id=email.pk, delivery_ids=[email.deliveries.get().pk], outcome="sent", attempt=1, at=AT)
    assert "provider" not in body
    delivery_results_apply(results=[parse_result(json.dumps(body).encode())])

    delivery = email.deliveries.get()
    assert delivery.status == "sent" and delivery.provider == ""
