"""A batch through the whole pipeline: API -> RabbitMQ -> sender process -> fake SendGrid -> results -> database."""

import pytest

from emailsystem.emails.models import Delivery
from emailsystem.emails.tests.factories import EmailTemplateFactory
from emailsystem.emails.tests.pipeline import all_settled, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.rabbitmq, pytest.mark.slow]


def test_every_message_of_a_batch_reaches_sendgrid_through_the_stack(stack, user_client):
    stack.start("sender"), stack.start("results")
    template = EmailTemplateFactory(subject="Receipt {{ n }}", body="Total {{ n }}", html_body="")
    batch = [{"recipients": [f"r{n}@example.com"], "template": template.pk, "context": {"n": n}} for n in range(30)]
    batch.append({"recipients": ["x@example.com", "y@example.com"], "subject": "Ad hoc", "body": "Plain"})

    response = user_client.post("/api/v1/emails/batch/", {"messages": batch}, format="json")
    assert response.status_code == 202, response.json()
    email_ids = [result["id"] for result in response.json()["results"]]
    wait_until(lambda: all_settled(email_ids), stack, what="every recipient of the batch settled")

    received = {
        (personalization["to"][0]["email"], request.body["subject"])
        for request in stack.fake.requests
        for personalization in request.body["personalizations"]
    }
    assert received == {(f"r{n}@example.com", f"Receipt {n}") for n in range(30)} | {
        ("x@example.com", "Ad hoc"),
        ("y@example.com", "Ad hoc"),
    }
    assert set(Delivery.objects.filter(sent_email_id__in=email_ids).values_list("status", flat=True)) == {"sent"}
