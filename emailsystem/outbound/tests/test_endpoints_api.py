"""webhooks/endpoints/ through HTTP: shapes, validation, ownership, scope, and the messages the API queues."""

import base64

import pytest
from django.db import transaction

from emailsystem.emails.tests.factories import sent_email
from emailsystem.outbound.models import MessageState, WebhookAttempt, WebhookEndpoint, WebhookMessage
from emailsystem.outbound.services import endpoint_secrets
from emailsystem.users.models import ApiKeyScope
from emailsystem.users.tests.factories import api_key_issue, bearer

pytestmark = pytest.mark.django_db

URL = "/api/v1/webhooks/endpoints/"


@pytest.fixture(autouse=True)
def private_targets(settings):
    settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE = True


def create(client, **fields):
    body = {"url": "http://127.0.0.1:9/hook", "events": ["email.sent", "email.delivered"], **fields}
    return client.post(URL, body, format="json")


def test_create_answers_the_endpoint_with_its_secret_once(user_client):
    response = create(user_client, description="billing")

    assert response.status_code == 201, response.json()
    data = response.json()
    assert set(data) == {"id", "url", "events", "description", "enabled", "disabled_reason", "created", "secret"}
    assert data["secret"].startswith("whsec_")
    assert len(base64.b64decode(data["secret"][6:])) >= 24
    assert data["events"] == ["email.sent", "email.delivered"]
    assert (data["enabled"], data["description"]) == (True, "billing")
    endpoint = WebhookEndpoint.objects.get(pk=data["id"])
    assert data["secret"] not in endpoint.secret_encrypted
    assert endpoint_secrets(endpoint) == [data["secret"]]
    listed = user_client.get(URL).json()
    assert [item["id"] for item in listed["results"]] == [data["id"]]
    assert "secret" not in listed["results"][0]
    assert "secret" not in user_client.get(f"{URL}{data['id']}/").json()


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"events": ["email.sent", "email.exploded"]}, "events", "email.exploded"),
        ({"events": []}, "events", ""),
        ({"events": ["endpoint.test"]}, "events", "endpoint.test"),
        ({"events": "email.sent"}, "events", ""),
        ({"url": "not a url"}, "url", ""),
        ({"url": "https://" + "a" * 2000 + ".com/"}, "url", ""),
        ({"description": "x" * 201}, "description", ""),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_changes_nothing(user_client, body, field, words):
    response = create(user_client, **body)

    assert response.status_code == 400
    assert field in response.json()
    assert words in str(response.json()[field])
    assert not WebhookEndpoint.objects.exists()


def test_private_and_plain_http_urls_are_refused_without_the_setting(user_client, settings):
    settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE = False

    for url, words in [
        ("http://example.com/hook", "https"),
        ("https://127.0.0.1/hook", "not a public address"),
        ("https://169.254.169.254/latest/meta-data/", "not a public address"),
        ("https://[::ffff:10.0.0.1]/hook", "not a public address"),
    ]:
        response = create(user_client, url=url)
        assert response.status_code == 400, url
        assert words in response.json()["url"][0], response.json()
    assert not WebhookEndpoint.objects.exists()


def test_patch_changes_fields_and_refuses_bad_ones(user_client, settings):
    endpoint_id = create(user_client).json()["id"]

    change = {"events": ["email.bounced"], "description": "d"}
    changed = user_client.patch(f"{URL}{endpoint_id}/", change, format="json")
    settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE = False
    refused = user_client.patch(f"{URL}{endpoint_id}/", {"url": "https://10.0.0.1/"}, format="json")
    bad_events = user_client.patch(f"{URL}{endpoint_id}/", {"events": ["nope"]}, format="json")

    assert changed.status_code == 200 and changed.json()["events"] == ["email.bounced"]
    assert refused.status_code == 400 and "url" in refused.json()
    assert bad_events.status_code == 400 and "nope" in str(bad_events.json()["events"])
    endpoint = WebhookEndpoint.objects.get(pk=endpoint_id)
    assert (endpoint.url, endpoint.events, endpoint.description) == ("http://127.0.0.1:9/hook", ["email.bounced"], "d")
    assert user_client.put(f"{URL}{endpoint_id}/", {}, format="json").status_code == 405


def test_other_users_get_404_for_every_operation(user_client, other_client):
    endpoint_id = create(user_client).json()["id"]
    attempt_path = f"{URL}{endpoint_id}/deliveries/1/replay/"

    answers = [
        other_client.get(f"{URL}{endpoint_id}/"),
        other_client.patch(f"{URL}{endpoint_id}/", {"description": "mine"}, format="json"),
        other_client.delete(f"{URL}{endpoint_id}/"),
        other_client.post(f"{URL}{endpoint_id}/rotate-secret/"),
        other_client.post(f"{URL}{endpoint_id}/test/"),
        other_client.get(f"{URL}{endpoint_id}/deliveries/"),
        other_client.post(attempt_path),
    ]

    assert [answer.status_code for answer in answers] == [404] * len(answers)
    assert other_client.get(URL).json()["count"] == 0
    endpoint = WebhookEndpoint.objects.get(pk=endpoint_id)
    assert endpoint.description == "" and not WebhookMessage.objects.exists()


def test_a_send_key_is_refused_and_a_full_key_allowed(user):
    send_key = bearer(api_key_issue(user, ApiKeyScope.SEND).key)
    full_key = bearer(api_key_issue(user, ApiKeyScope.FULL, name="full").key)

    assert send_key.get(URL).status_code == 403
    assert create(send_key).status_code == 403
    assert create(full_key).status_code == 201


def test_rotate_gives_a_new_secret_and_keeps_the_old_one_signing(user_client):
    created = create(user_client).json()

    rotated = user_client.post(f"{URL}{created['id']}/rotate-secret/")

    assert rotated.status_code == 200
    new_secret = rotated.json()["secret"]
    assert new_secret.startswith("whsec_") and new_secret != created["secret"]
    assert endpoint_secrets(WebhookEndpoint.objects.get(pk=created["id"])) == [new_secret, created["secret"]]


def test_test_queues_an_endpoint_test_message(user_client):
    endpoint_id = create(user_client).json()["id"]

    response = user_client.post(f"{URL}{endpoint_id}/test/")

    assert response.status_code == 202
    message = WebhookMessage.objects.get()
    assert (message.event_type, message.webhook_id) == ("endpoint.test", response.json()["webhook_id"])
    assert message.publish_after is not None  # no broker in this test: the relay's to publish


def test_deliveries_list_newest_first_and_replay_requeues_the_message(user_client, other_client):
    endpoint_id = create(user_client).json()["id"]
    user_client.post(f"{URL}{endpoint_id}/test/")
    message = WebhookMessage.objects.get()
    first = WebhookAttempt.objects.create(message=message, endpoint_id=endpoint_id, attempt=1, status_code=500)
    second = WebhookAttempt.objects.create(message=message, endpoint_id=endpoint_id, attempt=2, status_code=200)
    WebhookMessage.objects.filter(pk=message.pk).update(state=MessageState.DELIVERED, publish_after=None)

    listed = user_client.get(f"{URL}{endpoint_id}/deliveries/").json()
    replayed = user_client.post(f"{URL}{endpoint_id}/deliveries/{first.pk}/replay/")
    missing = user_client.post(f"{URL}{endpoint_id}/deliveries/abc/replay/")

    assert [item["id"] for item in listed["results"]] == [second.pk, first.pk]
    assert listed["results"][0] == {
        "id": second.pk,
        "event_type": "endpoint.test",
        "webhook_id": message.webhook_id,
        "attempt": 2,
        "status_code": 200,
        "duration_ms": 0,
        "error": "",
        "next_retry_at": None,
        "created": listed["results"][0]["created"],
    }
    assert replayed.status_code == 202 and replayed.json()["webhook_id"] == message.webhook_id
    message.refresh_from_db()
    assert message.state == MessageState.PENDING and message.publish_after is not None
    assert missing.status_code == 404


def test_delete_removes_the_endpoint(user_client):
    endpoint_id = create(user_client).json()["id"]

    assert user_client.delete(f"{URL}{endpoint_id}/").status_code == 204
    assert not WebhookEndpoint.objects.exists()


def test_events_are_recorded_only_for_subscribed_types_and_enabled_endpoints(user, user_client, other_user):
    sent_only = create(user_client, events=["email.sent"]).json()["id"]
    queued = create(user_client, events=["email.queued", "email.suppressed"]).json()["id"]
    disabled = create(user_client, events=["email.queued"]).json()["id"]
    user_client.patch(f"{URL}{disabled}/", {"enabled": False}, format="json")

    sent_email(user=user, recipients=["a@example.com", "b@example.com"], tags=["t"], metadata={"k": "v"})
    sent_email(user=other_user, recipients=["c@example.com"])

    messages = list(WebhookMessage.objects.order_by("pk"))
    assert {message.endpoint_id for message in messages} == {queued}
    assert sent_only not in {message.endpoint_id for message in messages}
    bodies = sorted(message.body for message in messages)
    assert len(bodies) == 2 and all('"type":"email.queued"' in body for body in bodies)
    assert '"tags":["t"]' in bodies[0] and '"metadata":{"k":"v"}' in bodies[0]


def test_a_rolled_back_send_leaves_no_message(user, user_client):
    create(user_client, events=["email.queued"])

    with pytest.raises(RuntimeError), transaction.atomic():
        sent_email(user=user, recipients=["a@example.com"])
        raise RuntimeError("the send's transaction fails after the event was written")

    assert not WebhookMessage.objects.exists()
