"""What a key may do: a `send` key sends and reads the log, nothing else; a `full` key acts as its user.

Through the whole API against PostgreSQL: the sends are recorded by the same services as a
login token's, under the key's user, and count against that user's quota.
"""

import pytest

from emailsystem.conftest import token_client
from emailsystem.emails.models import SentEmail, Suppression, SuppressionReason
from emailsystem.emails.tests.factories import EmailTemplateFactory, sent_email
from emailsystem.users.authentication import ApiKeyScopeDenied
from emailsystem.users.models import ApiKeyScope
from emailsystem.users.tests.factories import api_key_issue, bearer

LOG = "/api/v1/emails/sent-email/"
pytestmark = pytest.mark.django_db


def a_send(*recipients: str) -> dict:
    return {"recipients": list(recipients), "subject": "Invoice", "body": "Your invoice is attached."}


def test_a_send_key_sends_as_its_user_and_reads_what_was_sent(user):
    client = bearer(api_key_issue(user).key)

    sent = client.post(LOG, a_send("ada@example.com"))

    assert sent.status_code == 202, sent.json()
    email = SentEmail.objects.get(pk=sent.json()["id"])
    assert email.sender == user
    assert [row["id"] for row in client.get(LOG).json()["results"]] == [email.pk]
    assert client.get(f"{LOG}{email.pk}/").json()["recipients"][0]["email"] == "ada@example.com"
    # The log is the user's, whoever sent: the user's own token reads the key's send.
    assert [row["id"] for row in token_client(user).get(LOG).json()["results"]] == [email.pk]


def test_a_send_key_batches_and_previews(user):
    client = bearer(api_key_issue(user).key)
    template = EmailTemplateFactory()

    batch = client.post("/api/v1/emails/batch/", {"messages": [a_send("a@example.com"), a_send("b@example.com")]})
    preview = client.post(
        f"/api/v1/emails/email-template/{template.pk}/preview/", {"context": {"name": "Ada", "order": 7}}
    )

    assert batch.status_code == 202 and len(batch.json()["results"]) == 2
    assert preview.status_code == 200 and preview.json()["subject"] == "Hello Ada"
    assert SentEmail.objects.filter(sender=user).count() == 2


def test_a_send_key_counts_against_its_users_quota(user):
    user.daily_quota = 3
    user.save()
    key = bearer(api_key_issue(user).key)

    assert key.post(LOG, a_send("a@example.com", "b@example.com")).status_code == 202
    over_by_token = token_client(user).post(LOG, a_send("c@example.com", "d@example.com"))
    over_by_key = key.post(LOG, a_send("c@example.com", "d@example.com"))

    assert over_by_token.status_code == 429 and over_by_key.status_code == 429
    assert key.post(LOG, a_send("c@example.com")).status_code == 202


def test_a_send_key_skips_its_users_suppressed_addresses(user):
    email = sent_email(user=user, recipients=["gone@example.com"])
    Suppression.objects.create(user=user, recipient=email.deliveries.get().recipient, reason=SuppressionReason.BOUNCE)

    sent = bearer(api_key_issue(user).key).post(LOG, a_send("gone@example.com"))

    assert sent.status_code == 202
    assert sent.json()["recipients"][0]["status"] == "suppressed"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/"),
        ("get", "/api/v1/emails/email-template/"),
        ("post", "/api/v1/emails/email-template/validate/"),
        ("get", "/api/v1/emails/suppressions/"),
        ("post", "{log}{email}/cancel/"),
        ("put", "{log}"),
        ("get", "/api/v1/emails/batch/"),
        ("get", "/api/v1/users/me/"),
        ("post", "/api/v1/users/logout/"),
        ("post", "/api/v1/users/verify-email/"),
        ("get", "/api/v1/users/api-keys/"),
        ("post", "/api/v1/users/api-keys/"),
        ("delete", "/api/v1/users/api-keys/{key}/"),
    ],
)
def test_a_send_key_is_refused_everything_else_with_403(user, method, path):
    issued = api_key_issue(user)
    email = sent_email(user=user)
    client = bearer(issued.key)

    response = getattr(client, method)(path.format(log=LOG, email=email.pk, key=issued.api_key.pk), {})

    assert response.status_code == 403
    assert response.json() == {"detail": ApiKeyScopeDenied.default_detail}
    assert user.api_keys.filter(revoked_at__isnull=True).count() == 1  # it did not revoke itself


def test_a_full_key_acts_as_its_user(user):
    client = bearer(api_key_issue(user, ApiKeyScope.FULL).key)
    email = sent_email(user=user)

    assert client.get("/api/v1/users/me/").json()["email"] == user.email
    assert client.get("/api/v1/emails/suppressions/").status_code == 200
    assert client.post(f"{LOG}{email.pk}/cancel/").status_code == 409  # not scheduled: refused as for the user
    assert client.post("/api/v1/users/api-keys/", {"name": "child", "scope": "send"}).status_code == 201
    assert client.post("/api/v1/emails/email-template/", {"name": "n", "subject": "s", "body": "b"}).status_code == 403


def test_a_full_key_of_an_admin_writes_templates_as_the_admin(admin):
    client = bearer(api_key_issue(admin, ApiKeyScope.FULL).key)

    response = client.post("/api/v1/emails/email-template/", {"name": "n", "subject": "s", "body": "b"})

    assert response.status_code == 201


def test_a_send_key_of_an_admin_is_still_only_a_send_key(admin):
    client = bearer(api_key_issue(admin).key)

    response = client.post("/api/v1/emails/email-template/", {"name": "n", "subject": "s", "body": "b"})

    assert response.status_code == 403
