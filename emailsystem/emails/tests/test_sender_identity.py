"""Sender identity through the real HTTP API: an address is From or Reply-To only once its owner proved it.

The attack: registering is open and proves nothing about the address, so without this rule
registering ceo@example.org and sending "Urgent wire transfer" to finance@example.org would go
out From ceo@example.org. What each email says is read from the .eml files embedded delivery
writes (EmlFolderClient), exactly what a recipient would get.
"""

import email
import email.policy
import re
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import signing
from django.test import Client, override_settings
from rest_framework.test import APIClient

from emailsender.clients import EmlFolderClient
from emailsystem.emails.delivery.config import sender_settings
from emailsystem.emails.delivery.embedded import outbox_process
from emailsystem.emails.models import DailySendCount, Delivery, IdempotencyRecord, OutboxMessage, SentEmail
from emailsystem.users.models import User
from emailsystem.users.services import SYSTEM_USERNAME
from emailsystem.users.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

REGISTER = "/api/v1/users/register/"
LOGIN = "/api/v1/users/login/"
SEND = "/api/v1/emails/sent-email/"
VERIFY = "/api/v1/users/verify-email/"
PASSWORD = "plum-orchard-lantern-7"
WIRE_TRANSFER = {
    "recipients": ["finance@example.org"],
    "subject": "Urgent wire transfer",
    "body": "Please wire 48,000 EUR to the account below today. Do not call me, I am in a meeting.",
}


def register_and_log_in(email_address: str = "ceo@example.org", username: str = "ceo") -> APIClient:
    """What the attacker (or anyone) does: register with an address, log in, hold the token."""
    client = APIClient()
    registered = client.post(
        REGISTER, {"email": email_address, "username": username, "password": PASSWORD}, format="json"
    )
    assert registered.status_code == 201, registered.json()
    login = client.post(LOGIN, {"username": email_address, "password": PASSWORD}, format="json")
    assert login.status_code == 200
    client.credentials(HTTP_AUTHORIZATION=f"Token {login.json()['token']}")
    return client


def deliver(outbox: Path) -> list[EmailMessage]:
    """Run embedded delivery once, as `make run`'s worker does; every email written to `outbox` so far, oldest first."""
    outbox_process(client=EmlFolderClient(outbox), config=sender_settings())
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted(outbox.glob("*.eml"))
    ]


def mailed_to(messages: list[EmailMessage], address: str) -> list[EmailMessage]:
    return [message for message in messages if message["To"] == address]


def link_in(message: EmailMessage) -> str:
    """The link a person would click: the only URL in the plain-text body."""
    body = message.get_body(("plain",))
    assert body is not None, "the message has a plain-text part"
    [link] = re.findall(r"https?://\S+", body.get_content())
    return link


def follow(client: APIClient, link: str) -> object:
    """Open a mailed link with this client (the test server answers any host in ALLOWED_HOSTS)."""
    parts = urlsplit(link)
    return client.get(f"{parts.path}?{parts.query}")


def nothing_sent_by(user: User) -> bool:
    return (
        not SentEmail.objects.filter(sender=user).exists()
        and not Delivery.objects.filter(sent_email__sender=user).exists()
        and not DailySendCount.objects.filter(user=user).exists()
        and not IdempotencyRecord.objects.filter(user=user).exists()
    )


def test_an_unverified_address_cannot_send_as_itself_without_a_from_address(settings, tmp_path):
    """The reproduction, EMAIL_FROM_ADDRESS unset: refused with 403 saying what to do, and nothing stored."""
    settings.EMAIL_FROM_ADDRESS = ""
    client = register_and_log_in()
    ceo = User.objects.get(email="ceo@example.org")
    outbox_rows = OutboxMessage.objects.count()

    response = client.post(SEND, WIRE_TRANSFER, format="json", HTTP_IDEMPOTENCY_KEY="wire-1")

    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "sender_not_verified"
    assert "ceo@example.org is not verified" in body["detail"]
    assert "Follow the link we mailed to ceo@example.org" in body["detail"]
    assert "POST /api/v1/users/verify-email/" in body["detail"] and "ask an admin" in body["detail"]
    assert nothing_sent_by(ceo)
    assert OutboxMessage.objects.count() == outbox_rows
    assert mailed_to(deliver(tmp_path), "finance@example.org") == []


@override_settings(EMAIL_FROM_ADDRESS="mailer@service.example")
def test_an_unverified_address_goes_from_the_service_address_alone_with_no_reply_to(tmp_path):
    """The reproduction with EMAIL_FROM_ADDRESS set: the email finance gets is From the service, and replies
    cannot reach the unproved address."""
    client = register_and_log_in()

    response = client.post(SEND, WIRE_TRANSFER, format="json")

    assert response.status_code == 202
    [received] = mailed_to(deliver(tmp_path), "finance@example.org")
    assert received["From"] == "mailer@service.example"
    assert received["Reply-To"] is None
    assert "ceo@example.org" not in received.as_string()
    stored = SentEmail.objects.get(pk=response.json()["id"])
    assert (stored.from_email, stored.reply_to) == ("mailer@service.example", "")


@pytest.mark.parametrize("from_address", ["", "mailer@service.example"])
def test_following_the_mailed_link_makes_the_users_address_their_sender(settings, tmp_path, from_address):
    """End to end: the link reaches the outbox through the pipeline, following it verifies, the next send uses the
    address (From it; under EMAIL_FROM_ADDRESS, Reply-To it)."""
    settings.EMAIL_FROM_ADDRESS = from_address
    client = register_and_log_in("ada@example.org", "ada")
    assert client.get("/api/v1/users/me/").json() == {
        "email": "ada@example.org",
        "username": "ada",
        "email_verified": False,
    }

    [verification] = mailed_to(deliver(tmp_path), "ada@example.org")
    assert verification["Subject"] == "Confirm your email address"
    assert verification["From"] == (from_address or "no-reply@localhost")
    opened = follow(APIClient(), link_in(verification))  # a mail client: no login, no token
    assert opened.status_code == 200, opened.json()
    assert opened.json() == {
        "message": "ada@example.org is verified: the emails you send now use it.",
        "email": "ada@example.org",
        "email_verified": True,
    }
    assert client.get("/api/v1/users/me/").json()["email_verified"] is True

    sent = client.post(SEND, {"recipients": ["bob@example.com"], "subject": "Hi", "body": "b"}, format="json")

    assert sent.status_code == 202
    [received] = mailed_to(deliver(tmp_path), "bob@example.com")
    if from_address:
        assert (received["From"], received["Reply-To"]) == (from_address, "ada@example.org")
    else:
        assert (received["From"], received["Reply-To"]) == ("ada@example.org", None)


def test_the_link_is_never_in_the_users_own_log(tmp_path):
    """Recorded under the system account: the user cannot read the link without the mailbox."""
    client = register_and_log_in()

    [verification] = mailed_to(deliver(tmp_path), "ceo@example.org")

    token = parse_qs(urlsplit(link_in(verification)).query)["token"][0]
    assert client.get(SEND).json()["count"] == 0
    assert token not in client.get("/api/v1/users/me/").content.decode()
    assert SentEmail.objects.get(subject="Confirm your email address").sender.username == SYSTEM_USERNAME


def a_fresh_link(tmp_path: Path, address: str = "ceo@example.org") -> str:
    return link_in(mailed_to(deliver(tmp_path), address)[-1])


def with_token(link: str, token: str) -> str:
    parts = urlsplit(link)
    return f"{parts.path}?token={token}"


def refused(response, code: str) -> None:
    assert response.status_code == 400, response.json()
    assert response.json()["code"] == code
    assert "POST /api/v1/users/verify-email/" in response.json()["token"][0]


def test_an_expired_link_is_refused_and_changes_nothing(tmp_path, monkeypatch, settings):
    made_at = signing.TimestampSigner.timestamp
    # Registered (and mailed the link) longer ago than EMAIL_VERIFICATION_MAX_AGE.
    monkeypatch.setattr(
        signing.TimestampSigner,
        "timestamp",
        lambda signer: signing.b62_encode(
            signing.b62_decode(made_at(signer)) - settings.EMAIL_VERIFICATION_MAX_AGE - 1
        ),
    )
    register_and_log_in()
    monkeypatch.undo()
    link = a_fresh_link(tmp_path)

    response = follow(APIClient(), link)

    refused(response, "expired_link")
    assert "expired" in response.json()["token"][0]
    assert not User.objects.get(email="ceo@example.org").email_verified


def test_a_tampered_link_is_refused_and_changes_nothing(tmp_path):
    register_and_log_in()
    victim = register_and_log_in("cfo@example.org", "cfo")
    link = a_fresh_link(tmp_path)
    user_id, timestamp, signature = parse_qs(urlsplit(link).query)["token"][0].split(":")
    cfo_id = User.objects.get(email="cfo@example.org").pk

    for token in (
        f"{user_id}:{timestamp}:{signature[:-1]}{'A' if signature[-1] != 'A' else 'B'}",  # a changed signature
        f"{cfo_id}:{timestamp}:{signature}",  # ceo's signature on cfo's id
        f"{user_id}:{timestamp}",  # cut short
        "",
        "9" * 40 + f":{timestamp}:{signature}",  # an id no column holds
    ):
        response = follow(APIClient(), with_token(link, token))
        assert response.status_code == 400, (token, response.json())
        assert "token" in response.json()
    assert not User.objects.filter(verified_email__gt="").exclude(username=SYSTEM_USERNAME).exists()
    assert victim.get("/api/v1/users/me/").json()["email_verified"] is False


def test_one_users_link_verifies_only_that_user_and_only_once(tmp_path):
    register_and_log_in()
    other = register_and_log_in("cfo@example.org", "cfo")
    ceo_link = a_fresh_link(tmp_path, "ceo@example.org")

    assert follow(other, ceo_link).status_code == 200  # whoever holds the link proves ceo's mailbox, not their own

    assert User.objects.get(email="ceo@example.org").email_verified
    assert not User.objects.get(email="cfo@example.org").email_verified
    refused(follow(APIClient(), ceo_link), "invalid_link")  # used once already


def test_a_link_for_an_address_the_account_no_longer_has_is_refused(tmp_path):
    register_and_log_in()
    link = a_fresh_link(tmp_path)
    user = User.objects.get(email="ceo@example.org")
    user.email = "someone-else@example.org"
    user.save()

    refused(follow(APIClient(), link), "invalid_link")

    assert not User.objects.get(pk=user.pk).email_verified


def test_asking_again_mails_a_new_link_through_the_pipeline(tmp_path):
    client = register_and_log_in()
    deliver(tmp_path)

    response = client.post(VERIFY)

    assert response.status_code == 202
    assert response.json()["email_verified"] is False
    assert "We mailed a new link to ceo@example.org" in response.json()["message"]
    _first, second = mailed_to(deliver(tmp_path), "ceo@example.org")
    assert follow(APIClient(), link_in(second)).status_code == 200
    verified = client.post(VERIFY)
    assert verified.status_code == 200
    assert verified.json() == {
        "message": "ceo@example.org is already verified.",
        "email": "ceo@example.org",
        "email_verified": True,
    }
    assert len(mailed_to(deliver(tmp_path), "ceo@example.org")) == 2, "nothing mailed to a verified address"


def test_asking_for_links_is_throttled_per_ip(settings):
    settings.THROTTLE_AUTH = (3, 60)
    client = register_and_log_in()  # register and log in: two of the three
    mails = SentEmail.objects.count()

    assert client.post(VERIFY).status_code == 202
    throttled = client.post(VERIFY)

    assert throttled.status_code == 429
    assert SentEmail.objects.count() == mails + 1


def test_a_link_needs_a_token_and_says_so():
    response = APIClient().get(VERIFY)

    assert response.status_code == 400
    assert response.json() == {"token": ["This field is required."]}


@override_settings(PUBLIC_BASE_URL="https://mail.example.net")
def test_links_start_with_the_public_base_url(tmp_path):
    register_and_log_in()

    assert a_fresh_link(tmp_path).startswith("https://mail.example.net/api/v1/users/verify-email/?token=")


def test_an_admin_mails_links_to_the_selected_unverified_users(admin, tmp_path):
    unverified = UserFactory(email="new@example.org", unverified=True)
    verified = UserFactory(email="old@example.org")
    browser = Client()
    browser.force_login(admin)

    page = browser.post(
        "/admin/users/user/",
        {"action": "send_verification_links", "_selected_action": [unverified.pk, verified.pk]},
        follow=True,
    )

    assert "Mailed 1 verification link(s)." in page.content.decode()
    messages = deliver(tmp_path)
    assert [message["To"] for message in messages] == ["new@example.org"]
    assert follow(APIClient(), link_in(messages[0])).status_code == 200
    assert User.objects.get(pk=unverified.pk).email_verified
