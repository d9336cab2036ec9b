"""API keys: issued once, stored as a digest, listed, revoked, and authenticating as cheaply as a token."""

import datetime
import hashlib

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from emailsystem.conftest import token_client
from emailsystem.users import api_keys
from emailsystem.users.api_keys import USE_RECORD_INTERVAL, api_key_create
from emailsystem.users.authentication import ApiKeyScopeDenied
from emailsystem.users.models import ApiKey, ApiKeyScope
from emailsystem.users.tests.factories import UserFactory, api_key_issue, bearer

KEYS = "/api/v1/users/api-keys/"
LOG = "/api/v1/emails/sent-email/"
CHALLENGE = 'Bearer realm="api"'
pytestmark = pytest.mark.django_db


def test_a_new_key_is_shown_once_and_stored_only_as_its_sha256(user):
    response = token_client(user).post(KEYS, {"name": "billing-app", "scope": "send"})

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "name", "scope", "prefix", "key", "created"}
    key = body["key"]
    assert key.startswith("es_s_") and len(key) == 48 and body["prefix"] == key[:12]
    stored = ApiKey.objects.get(pk=body["id"])
    assert (stored.user, stored.name, stored.scope) == (user, "billing-app", ApiKeyScope.SEND)
    assert stored.key_hash == hashlib.sha256(key.encode()).hexdigest()
    row = ApiKey.objects.filter(pk=stored.pk).values().get()
    assert not any(key in str(value) for value in row.values())
    listed = token_client(user).get(KEYS).json()["results"]
    assert key not in str(listed) and stored.key_hash not in str(listed)


def test_a_full_key_says_so_in_its_first_characters(user):
    body = token_client(user).post(KEYS, {"name": "ops", "scope": "full"}).json()

    assert body["scope"] == "full" and body["key"].startswith("es_f_")


def test_the_scope_defaults_to_send(user):
    assert token_client(user).post(KEYS, {"name": "cron"}).json()["scope"] == "send"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scope": "send"}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "a", "scope": "admin"}, "scope"),
    ],
    ids=["no-name", "blank-name", "long-name", "unknown-scope"],
)
def test_a_bad_key_request_is_400_on_its_field(user, body, field):
    response = token_client(user).post(KEYS, body)

    assert response.status_code == 400 and field in response.json()
    assert not ApiKey.objects.exists()


def test_the_list_shows_the_callers_live_keys_newest_first(user, other_user):
    first = api_key_issue(user, name="first")
    second = api_key_issue(user, ApiKeyScope.FULL, name="second")
    revoked = api_key_issue(user, name="revoked")
    token_client(user).delete(f"{KEYS}{revoked.api_key.pk}/")
    api_key_issue(other_user, name="someone-elses")

    results = token_client(user).get(KEYS).json()["results"]

    assert [key["name"] for key in results] == ["second", "first"]
    assert set(results[0]) == {"id", "name", "scope", "prefix", "created", "last_used"}
    assert results[0]["prefix"] == second.api_key.prefix and results[1]["prefix"] == first.api_key.prefix


def test_a_revoked_key_is_401_on_the_next_request(user):
    issued = api_key_issue(user, ApiKeyScope.FULL)
    client = bearer(issued.key)
    assert client.get(LOG).status_code == 200

    assert token_client(user).delete(f"{KEYS}{issued.api_key.pk}/").status_code == 204
    response = client.get(LOG)

    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid API key."}
    assert response.headers["WWW-Authenticate"] == CHALLENGE
    assert ApiKey.objects.get(pk=issued.api_key.pk).revoked_at is not None  # kept for the admin's record


def test_a_full_key_can_revoke_itself(user):
    issued = api_key_issue(user, ApiKeyScope.FULL)
    client = bearer(issued.key)

    assert client.delete(f"{KEYS}{issued.api_key.pk}/").status_code == 204
    assert client.get(LOG).status_code == 401


def test_another_users_key_is_404_to_delete_and_keeps_working(user, other_user):
    theirs = api_key_issue(other_user)

    assert token_client(user).delete(f"{KEYS}{theirs.api_key.pk}/").status_code == 404
    assert token_client(user).delete(f"{KEYS}not-a-number/").status_code == 404
    assert bearer(theirs.key).get(LOG).status_code == 200


def test_deactivating_the_user_kills_their_keys(user):
    issued = api_key_issue(user)
    user.is_active = False
    user.save()

    response = bearer(issued.key).get(LOG)

    assert response.status_code == 401 and response.headers["WWW-Authenticate"] == CHALLENGE


@pytest.mark.parametrize(
    "header",
    ["Bearer es_s_" + "A" * 43, "Bearer", "Bearer  ", "bearer es_f_x", "Bearer bad\x00key", "Bearer é"],
    ids=["unknown", "empty", "blank", "lowercase-scheme", "nul", "non-ascii"],
)
def test_a_wrong_bearer_key_is_401_with_a_bearer_challenge(user, header):
    client = APIClient()
    client.force_login(user)  # a session must not rescue a request whose key is wrong
    client.credentials(HTTP_AUTHORIZATION=header)

    response = client.get(LOG)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == CHALLENGE


def test_keys_and_login_tokens_answer_only_to_their_own_scheme(user):
    issued = api_key_issue(user, ApiKeyScope.FULL)
    token = token_client(user)
    token_key = token._credentials["HTTP_AUTHORIZATION"].split()[1]

    as_token = APIClient()
    as_token.credentials(HTTP_AUTHORIZATION=f"Token {issued.key}")

    assert as_token.get(LOG).status_code == 401
    assert bearer(token_key).get(LOG).status_code == 401
    assert token.get(LOG).status_code == 200  # login tokens work as before
    anonymous = APIClient().post(LOG, {})
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"] == "Token"


def test_the_key_authenticates_its_own_user_with_the_key_as_auth(user):
    issued = api_key_issue(user)

    response = bearer(issued.key).get(LOG)

    assert response.status_code == 200
    assert response.wsgi_request.user == user


def test_a_key_costs_the_same_queries_as_a_login_token(user):
    """Two reads by unique index each: the token or key, then the user; last_used is written
    only on the first use within a minute."""
    by_token = token_client(user)
    by_key = bearer(api_key_issue(user, ApiKeyScope.FULL).key)
    by_token.get(LOG)
    by_key.get(LOG)  # the first use writes last_used

    with CaptureQueriesContext(connection) as token_queries:
        assert by_token.get(LOG).status_code == 200
    with CaptureQueriesContext(connection) as key_queries:
        assert by_key.get(LOG).status_code == 200

    assert len(key_queries.captured_queries) == len(token_queries.captured_queries)
    lookup = key_queries.captured_queries[0]["sql"]
    assert "users_apikey" in lookup and '"key_hash" = ' in lookup and "JOIN" not in lookup


def test_last_used_is_written_at_most_once_a_minute(user):
    issued = api_key_issue(user)
    client = bearer(issued.key)
    assert ApiKey.objects.get(pk=issued.api_key.pk).last_used is None

    client.get(LOG)
    first = ApiKey.objects.get(pk=issued.api_key.pk).last_used
    with CaptureQueriesContext(connection) as again:
        client.get(LOG)
    assert first is not None and ApiKey.objects.get(pk=issued.api_key.pk).last_used == first
    assert not [query for query in again.captured_queries if query["sql"].startswith("UPDATE")]

    old = timezone.now() - USE_RECORD_INTERVAL - datetime.timedelta(seconds=1)
    ApiKey.objects.filter(pk=issued.api_key.pk).update(last_used=old)
    client.get(LOG)
    assert ApiKey.objects.get(pk=issued.api_key.pk).last_used > old
    assert token_client(user).get(KEYS).json()["results"][0]["last_used"] is not None


def test_a_refused_send_key_request_does_not_count_as_a_use(user):
    issued = api_key_issue(user)

    response = bearer(issued.key).get(KEYS)

    assert response.status_code == 403 and response.json() == {"detail": ApiKeyScopeDenied.default_detail}
    assert ApiKey.objects.get(pk=issued.api_key.pk).last_used is None


def test_a_taken_prefix_draws_a_new_key(user, monkeypatch):
    taken = api_key_issue(UserFactory())
    drawn = iter([taken.key, "es_s_" + "B" * 43])
    monkeypatch.setattr(api_keys, "api_key_generate", lambda scope: next(drawn))

    issued = api_key_create(user=user, name="second", scope=ApiKeyScope.SEND)

    assert issued.key == "es_s_" + "B" * 43
    assert bearer(issued.key).get(LOG).wsgi_request.user == user
