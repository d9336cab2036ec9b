"""One address, one spelling: the Unicode and punycode spellings of a domain (`café.example`,
`xn--caf-dma.example`) are stored as one ASCII form, so they are one Recipient, one quota count
and one suppression entry, and one account."""

import importlib

import pytest
from django.apps import apps as django_apps

from emailsystem.emails.delivery.work import work_message_for_outbox
from emailsystem.emails.models import (
    DailySendCount,
    Delivery,
    OutboxMessage,
    Recipient,
    SentEmail,
    Suppression,
    SuppressionReason,
)
from emailsystem.emails.selectors import delivery_search, sent_email_search
from emailsystem.users.models import User
from emailsystem.users.tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db
SENDS = "/api/v1/emails/sent-email/"
ASCII = "anna@xn--caf-dma.example"
SPELLINGS = ["anna@café.example", "Anna@CAFÉ.Example", "anna@XN--CAF-DMA.example", ASCII]


def send(client, recipients):
    return client.post(SENDS, {"recipients": recipients, "subject": "s", "body": "b"}, format="json")


def test_every_spelling_in_one_send_is_one_recipient_and_one_quota_count(user, user_client):
    response = send(user_client, [*SPELLINGS, "bob@example.com"])

    assert response.status_code == 202, response.json()
    assert [r["email"] for r in response.json()["recipients"]] == [ASCII, "bob@example.com"]
    assert list(Recipient.objects.order_by("email").values_list("email", flat=True)) == [ASCII, "bob@example.com"]
    assert DailySendCount.objects.get(user=user).count == 2


def test_sends_in_each_spelling_share_one_recipient_and_the_sender_gets_the_ascii_form(user_client):
    for spelling in SPELLINGS:
        assert send(user_client, [spelling]).status_code == 202

    assert list(Recipient.objects.values_list("email", flat=True)) == [ASCII]
    queued = [work_message_for_outbox(row).deliveries[0].to for row in OutboxMessage.objects.order_by("pk")]
    assert queued == [ASCII] * len(SPELLINGS)


def test_a_suppression_made_under_one_spelling_holds_for_the_other(user, user_client):
    send(user_client, ["anna@café.example"])
    Suppression.objects.create(user=user, recipient=Recipient.objects.get(), reason=SuppressionReason.BOUNCE)

    answer = send(user_client, ["anna@xn--caf-dma.example"]).json()

    assert answer["recipients"] == [{"email": ASCII, "status": "suppressed"}]
    assert Suppression.objects.count() == 1


def test_the_log_filter_and_the_admins_search_find_the_email_by_either_spelling(user_client):
    send(user_client, ["anna@xn--caf-dma.example"])
    send(user_client, ["bob@example.com"])

    by_filter = user_client.get(SENDS, {"recipient": "Anna@Café.example"}).json()
    by_search = sent_email_search(queryset=SentEmail.objects.all(), term="anna@café.example")
    deliveries = delivery_search(queryset=Delivery.objects.all(), term="ANNA@CAFÉ.example")

    assert [email["recipients"][0]["email"] for email in by_filter["results"]] == [ASCII]
    assert [email.deliveries.get().recipient.email for email in by_search] == [ASCII]
    assert [delivery.recipient.email for delivery in deliveries] == [ASCII]


@pytest.mark.parametrize("address", ["anna@xn--caf-pia.example", "anna@xn--.example", "anna@☃.example"])
def test_a_domain_with_no_ascii_spelling_is_the_usual_400_naming_the_recipient(user_client, address):
    response = send(user_client, ["ok@example.com", address])

    assert response.status_code == 400
    assert response.json() == {"recipients": {"1": ["Enter a valid email address."]}}
    assert not SentEmail.objects.exists() and not Recipient.objects.exists()


def test_an_account_registered_in_one_spelling_logs_in_with_the_other_and_cannot_be_registered_twice(api_client):
    account = {"email": "Anna@Café.example", "username": "anna", "password": DEFAULT_PASSWORD}
    registered = api_client.post("/api/v1/users/register/", account, format="json")
    again = api_client.post("/api/v1/users/register/", {**account, "email": ASCII, "username": "anna2"}, format="json")
    login = api_client.post(
        "/api/v1/users/login/", {"username": "anna@xn--caf-dma.example", "password": DEFAULT_PASSWORD}, format="json"
    )

    assert registered.status_code == 201 and registered.json()["email"] == ASCII
    assert again.status_code == 400 and "already exists" in again.json()["email"][0]
    assert login.status_code == 200 and login.json()["email"] == ASCII


def test_registering_with_a_domain_that_has_no_ascii_spelling_is_400_on_email(api_client):
    account = {"email": "anna@☃.example", "username": "anna", "password": DEFAULT_PASSWORD}

    response = api_client.post("/api/v1/users/register/", account, format="json")

    assert response.status_code == 400
    assert response.json() == {"email": ["Enter a valid email address."]}


def test_registration_domains_match_in_either_spelling(api_client, settings):
    settings.REGISTRATION, settings.REGISTRATION_DOMAINS = "domains", ["café.example"]
    account = {"email": ASCII, "username": "anna", "password": DEFAULT_PASSWORD}

    assert api_client.post("/api/v1/users/register/", account, format="json").status_code == 201


def migration(name):
    return importlib.import_module(f"emailsystem.{name}")


def test_the_migration_writes_recorded_recipients_in_the_ascii_spelling_keeping_their_suppressions(user, user_client):
    anna = Recipient.objects.create(email="anna@café.example")
    Suppression.objects.create(user=user, recipient=anna, reason=SuppressionReason.UNSUBSCRIBE)
    bob_unicode = Recipient.objects.create(email="bob@bücher.example")  # both spellings recorded
    bob_ascii = Recipient.objects.create(email="bob@xn--bcher-kva.example")
    Suppression.objects.create(user=user, recipient=bob_unicode, reason=SuppressionReason.BOUNCE)
    kept = [Recipient.objects.create(email=email) for email in ("carl@example.com", "dan@\u2603.example")]

    migration("emails.migrations.0013_recipient_ascii_domains").recipients_ascii_domains(django_apps, None)

    anna.refresh_from_db()
    assert anna.email == ASCII and anna.suppressions.get().reason == SuppressionReason.UNSUBSCRIBE
    assert bob_ascii.suppressions.get().reason == SuppressionReason.BOUNCE
    assert Recipient.objects.get(pk=bob_unicode.pk).email == "bob@bücher.example"
    assert [Recipient.objects.get(pk=row.pk).email for row in kept] == ["carl@example.com", "dan@\u2603.example"]
    answer = send(user_client, ["anna@café.example", "bob@bücher.example"]).json()
    assert {r["status"] for r in answer["recipients"]} == {"suppressed"}


def test_the_migration_writes_accounts_in_the_ascii_spelling_unless_another_account_has_it(capsys):
    anna, bob_unicode, bob_ascii = UserFactory(), UserFactory(), UserFactory(email="bob@xn--bcher-kva.example")
    User.objects.filter(pk=anna.pk).update(email="anna@café.example", verified_email="anna@café.example")
    User.objects.filter(pk=bob_unicode.pk).update(email="bob@bücher.example")

    migration("users.migrations.0005_user_ascii_domains").users_ascii_domains(django_apps, None)

    anna.refresh_from_db()
    assert (anna.email, anna.verified_email, anna.email_verified) == (ASCII, ASCII, True)
    assert User.objects.get(pk=bob_unicode.pk).email == "bob@bücher.example"
    assert User.objects.get(pk=bob_ascii.pk).email == "bob@xn--bcher-kva.example"
    assert f"(user ids): {bob_unicode.pk}" in capsys.readouterr().out
