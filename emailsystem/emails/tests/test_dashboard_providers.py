"""The admin dashboard's providers section: recipients sent per provider, the embedded worker's breakers."""

import pytest
from django.utils import timezone

from emailsender.clients import EmlFolderClient
from emailsender.providers import ProviderChain
from emailsystem.emails.delivery import embedded
from emailsystem.emails.models import Delivery, DeliveryStatus
from emailsystem.emails.tests.factories import sent_email

pytestmark = pytest.mark.django_db
PAGE = "/admin/dashboard/"


def test_the_page_shows_recipients_sent_per_provider_and_the_embedded_breakers(client, admin, user, monkeypatch):
    for provider, count in (("smtp", 3), ("sendgrid", 1)):
        email = sent_email(user=user, recipients=[f"r{n}@{provider}.example.com" for n in range(count)])
        Delivery.objects.filter(sent_email=email).update(
            status=DeliveryStatus.SENT, sent_at=timezone.now(), provider=provider
        )
    chain = ProviderChain([("sendgrid", EmlFolderClient("unused")), ("smtp", EmlFolderClient("unused"))])
    chain.breaker("sendgrid").failure("test")
    for _ in range(chain.breaker("sendgrid").threshold):
        chain.breaker("sendgrid").failure("status 503")
    monkeypatch.setattr(embedded, "worker_client", lambda: chain)
    client.force_login(admin)

    page = client.get(PAGE).content.decode()

    providers = page[page.index('id="providers"') :]
    assert providers.index("<td>smtp</td><td>3</td>") < providers.index("<td>sendgrid</td><td>1</td>")
    assert "<td>sendgrid</td><td>open</td>" in providers and "<td>smtp</td><td>closed</td>" in providers
