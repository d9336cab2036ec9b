"""Schema fuzzing: the real app, fed requests generated from its own OpenAPI schema (/api/schema/).

Every operation is called with data that fits the schema and with data that does not,
anonymously, as a normal user and (templates) as an admin, through the whole WSGI stack
against the test PostgreSQL database; and with a send-scope API key. Each answer must:
- never be a 5xx;
- have a status code, content type and body the schema documents for that operation;
- refuse what the schema calls invalid with a 4xx (schemathesis' negative_data_rejection);
- anonymously, refuse every write (other than register and login) with 401 or 403 and change
  nothing in the database;
- with a send key, refuse every operation outside the send scope with 403 and change nothing.

Bounded: derandomized (the same examples every run; any edit to `fuzz` reshuffles them), a
dozen examples per operation and mode, about 25 s in all. The last tests send by hand the
requests random data rarely gets right (a login, a replay, the quota, unsubscribe links) through
the same checks.
"""

import functools
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from emailsystem.emails.models import (
    EmailTemplate,
    IdempotencyRecord,
    OutboxMessage,
    SentEmail,
    Suppression,
    SuppressionReason,
)
from emailsystem.emails.tests.factories import EmailTemplateFactory, sent_email
from emailsystem.outbound.models import WebhookEndpoint
from emailsystem.outbound.services import endpoint_create
from emailsystem.users.models import ApiKey, ApiKeyScope, User
from emailsystem.users.services import email_verification_link
from emailsystem.users.tests.factories import DEFAULT_PASSWORD, UserFactory, api_key_issue

# Examples per operation and generation mode: small enough for the suite, enough to reach
# each field's edge cases (hypothesis starts from the simplest values and empty/odd strings).
MAX_EXAMPLES = 12
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# Writes an anonymous client is meant to make.
ANONYMOUS_WRITES = frozenset({"POST /api/v1/users/register/", "POST /api/v1/users/login/"})
# What an API key with the send scope may call; everything else answers it 403.
SEND_KEY_OPERATIONS = frozenset(
    {
        "POST /api/v1/emails/sent-email/",
        "GET /api/v1/emails/sent-email/",
        "GET /api/v1/emails/sent-email/{id}/",
        "POST /api/v1/emails/batch/",
        "POST /api/v1/emails/email-template/{id}/preview/",
    }
)


@functools.cache
def api_schema() -> Any:
    """The schema as /api/schema/ publishes it, bound to the WSGI app the cases are sent to."""
    return schemathesis.openapi.from_wsgi("/api/schema/?format=json", WSGIHandler())


def fuzz_targets(*, exclude: frozenset[str] = frozenset()) -> list[tuple[str, GenerationMode]]:
    """(operation label, mode) pairs; negative data only where the operation takes some input."""
    targets = []
    for result in api_schema().get_all_operations():
        operation = result.ok()
        if operation.label in exclude:
            continue
        targets.append((operation.label, GenerationMode.POSITIVE))
        # The Authorization header and session cookie come from the security schemes; an
        # operation with no other input has nothing to make invalid.
        headers = [header for header in operation.headers if header.name != "Authorization"]
        if any(len(group) for group in (operation.path_parameters, operation.query, operation.body, headers)):
            targets.append((operation.label, GenerationMode.NEGATIVE))
    return targets


@pytest.fixture
def wsgi_requests_in_test_transaction() -> Iterator[None]:
    """Keep each request on the test's connection and transaction, as Django's test client does.

    The WSGI handler would otherwise close the connection at the end of each request (the
    request_finished signal), ending the test's transaction.
    """
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def unthrottled(settings) -> None:
    """Register and login are throttled per IP and per account; the fuzzer is one IP making hundreds of calls."""
    settings.THROTTLE_AUTH = (100_000, 60)
    settings.THROTTLE_LOGIN_ACCOUNT = (100_000, 60)


@pytest.fixture
def public_base_url(settings) -> None:
    """Sends with `unsubscribe: true` are refused while PUBLIC_BASE_URL is unset; set, they go through."""
    settings.PUBLIC_BASE_URL = "https://mail.example.com"


def database_counts() -> dict[str, int]:
    models = (
        User,
        EmailTemplate,
        SentEmail,
        OutboxMessage,
        IdempotencyRecord,
        Token,
        Suppression,
        ApiKey,
        WebhookEndpoint,
    )
    return {model.__name__: model.objects.count() for model in models}


def fuzz(
    label: str,
    mode: GenerationMode,
    headers: dict[str, str],
    *,
    ids: dict[str, int],
    on_response: Callable | None = None,
) -> None:
    """Send MAX_EXAMPLES generated cases to the operation and validate every answer.

    With data that fits the schema, an `{id}` in the path is one that exists (from `ids`, by
    path prefix), so the operation's own code runs rather than a 404; invalid data invents ids.
    """
    method, path = label.split(" ", 1)
    operation = api_schema()[path][method]
    path_parameters = None
    if mode is GenerationMode.POSITIVE and "{id}" in path:
        path_parameters = {"id": next(pk for prefix, pk in ids.items() if path.startswith(prefix))}

    @hypothesis_settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters))
    def run(case: Any) -> None:
        response = case.call(headers=headers)
        case.validate_response(response, checks=CHECKS, headers=headers)
        if on_response is not None:
            on_response(case, response)

    run()


@pytest.fixture
def ids(user) -> dict[str, int]:
    """Existing objects for the `{id}` operations: a template, an email the user sent, an
    address on the user's suppression list, an API key and a webhook endpoint of the user's."""
    email = sent_email(user=user)
    suppression = Suppression.objects.create(
        user=user, recipient=email.deliveries.get().recipient, reason=SuppressionReason.UNSUBSCRIBE
    )
    return {
        "/api/v1/emails/email-template/": EmailTemplateFactory.create().pk,
        "/api/v1/emails/sent-email/": email.pk,
        "/api/v1/emails/suppressions/": suppression.pk,
        "/api/v1/users/api-keys/": api_key_issue(user, name="fuzzed").api_key.pk,
        "/api/v1/webhooks/endpoints/": endpoint_create(
            user=user, url="https://93.184.215.14/hook", events=["email.sent"]
        )[0].pk,
    }


def token_header(user: User) -> dict[str, str]:
    token, _ = Token.objects.get_or_create(user=user)
    return {"Authorization": f"Token {token.key}"}


pytestmark = pytest.mark.usefixtures("wsgi_requests_in_test_transaction", "unthrottled", "public_base_url")


@pytest.mark.parametrize(("label", "mode"), fuzz_targets())
def test_anonymous_requests_conform_and_never_write(label, mode, ids):
    before = database_counts()

    def refused(case: Any, response: Any) -> None:
        if label in ANONYMOUS_WRITES or case.method.upper() not in WRITE_METHODS:
            return
        assert response.status_code in (401, 403), f"anonymous {label} answered {response.status_code}"
        assert database_counts() == before, f"anonymous {label} changed the database"

    fuzz(label, mode, headers={}, ids=ids, on_response=refused)


@pytest.mark.parametrize(("label", "mode"), fuzz_targets(exclude=frozenset(ANONYMOUS_WRITES)))
def test_a_logged_in_users_requests_conform(label, mode, user, ids):
    fuzz(label, mode, headers=token_header(user), ids=ids)


@pytest.mark.parametrize(("label", "mode"), fuzz_targets(exclude=frozenset(ANONYMOUS_WRITES)))
def test_a_send_keys_requests_conform_and_stay_in_its_scope(label, mode, user, ids):
    """Register and login ignore keys; every other operation takes one, and refuses a send key
    unless it sends or reads the log."""
    headers = {"Authorization": f"Bearer {api_key_issue(user, ApiKeyScope.SEND).key}"}
    before = database_counts()

    def refused(case: Any, response: Any) -> None:
        if label in SEND_KEY_OPERATIONS:
            return
        assert response.status_code == 403, f"a send key's {label} answered {response.status_code}"
        assert database_counts() == before, f"a send key's {label} changed the database"

    fuzz(label, mode, headers=headers, ids=ids, on_response=refused)


@pytest.mark.parametrize(("label", "mode"), [target for target in fuzz_targets() if "/email-template/" in target[0]])
def test_an_admins_template_requests_conform(label, mode, admin, ids):
    """Admins are the only ones whose template writes get past the permission check."""
    fuzz(label, mode, headers=token_header(admin), ids=ids)


def call_and_validate(label: str, **case: Any) -> Any:
    """One hand-written request, validated against the schema like the generated ones."""
    method, path = label.split(" ", 1)
    explicit = api_schema()[path][method].Case(media_type="application/json" if "body" in case else None, **case)
    response = explicit.call()
    explicit.validate_response(
        response,
        checks=[not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance],
    )
    return response


def test_answers_the_fuzzer_rarely_reaches_match_the_schema(user, admin, settings):
    """Login, both kinds of send, a replay, a conflict, the quota, a logout and a throttle."""
    template = EmailTemplateFactory()
    login = call_and_validate("POST /api/v1/users/login/", body={"username": user.email, "password": DEFAULT_PASSWORD})
    assert login.status_code == 200
    auth = {"Authorization": f"Token {login.json()['token']}"}
    send = "POST /api/v1/emails/sent-email/"
    templated = {"recipients": ["a@example.com"], "template": template.pk, "context": {"name": "Ada", "order": "42"}}

    assert call_and_validate(send, body=templated, headers=auth).status_code == 202
    keyed = {**auth, "Idempotency-Key": "k-1"}
    ad_hoc = {"recipients": ["b@example.com"], "subject": "s", "body": "b"}
    assert call_and_validate(send, body=ad_hoc, headers=keyed).status_code == 202
    assert call_and_validate(send, body=ad_hoc, headers=keyed).status_code == 202  # the replay
    assert call_and_validate(send, body={**ad_hoc, "body": "other"}, headers=keyed).status_code == 409
    user.daily_quota = 2
    user.save()
    assert call_and_validate(send, body=ad_hoc, headers=auth).status_code == 429
    email_id = SentEmail.objects.filter(sender=user).values_list("pk", flat=True).first()
    read = call_and_validate("GET /api/v1/emails/sent-email/{id}/", path_parameters={"id": email_id}, headers=auth)
    assert read.status_code == 200
    assert call_and_validate("POST /api/v1/users/logout/", headers=auth).status_code == 200
    assert call_and_validate("GET /api/v1/emails/sent-email/", headers=auth).status_code == 401


def test_the_api_key_answers_match_the_schema(user):
    """Issue keys, send and read with them, refuse a send key, revoke a key: its next request is 401."""
    auth = token_header(user)
    keys = "POST /api/v1/users/api-keys/"
    send_key = call_and_validate(keys, body={"name": "billing-app", "scope": "send"}, headers=auth)
    full_key = call_and_validate(keys, body={"name": "ops", "scope": "full"}, headers=auth)
    assert send_key.status_code == full_key.status_code == 201
    as_send = {"Authorization": f"Bearer {send_key.json()['key']}"}
    as_full = {"Authorization": f"Bearer {full_key.json()['key']}"}
    ad_hoc = {"recipients": ["b@example.com"], "subject": "s", "body": "b"}

    assert call_and_validate("POST /api/v1/emails/sent-email/", body=ad_hoc, headers=as_send).status_code == 202
    assert call_and_validate("GET /api/v1/emails/sent-email/", headers=as_send).status_code == 200
    assert call_and_validate("GET /api/v1/users/api-keys/", headers=as_send).status_code == 403
    listed = call_and_validate("GET /api/v1/users/api-keys/", headers=as_full)
    assert listed.status_code == 200 and listed.json()["count"] == 2
    revoke = "DELETE /api/v1/users/api-keys/{id}/"
    key_id = send_key.json()["id"]
    assert call_and_validate(revoke, path_parameters={"id": key_id}, headers=as_full).status_code == 204
    assert call_and_validate(revoke, path_parameters={"id": key_id}, headers=as_full).status_code == 404
    assert call_and_validate("GET /api/v1/emails/sent-email/", headers=as_send).status_code == 401


@pytest.mark.usefixtures("db")
def test_a_throttled_login_matches_the_schema(settings):
    settings.THROTTLE_AUTH = (1, 60)
    wrong = {"username": "nobody@example.com", "password": "wrong-password"}

    assert call_and_validate("POST /api/v1/users/login/", body=wrong).status_code == 400
    assert call_and_validate("POST /api/v1/users/login/", body=wrong).status_code == 429


def test_the_unsubscribe_answers_match_the_schema(user, admin, settings):
    """A template offering the link, a send from it, one declining it, and the refusal without PUBLIC_BASE_URL."""
    template = call_and_validate(
        "POST /api/v1/emails/email-template/",
        body={"name": "newsletter", "subject": "News", "body": "Hello", "unsubscribe": True},
        headers=token_header(admin),
    )
    assert template.status_code == 201 and template.json()["unsubscribe"] is True
    send = "POST /api/v1/emails/sent-email/"
    auth = token_header(user)
    offered = {"recipients": ["a@example.com"], "template": template.json()["id"]}

    accepted = call_and_validate(send, body=offered, headers=auth)
    assert accepted.status_code == 202
    read = call_and_validate(
        "GET /api/v1/emails/sent-email/{id}/", path_parameters={"id": accepted.json()["id"]}, headers=auth
    )
    assert read.json()["unsubscribe"] is True
    settings.PUBLIC_BASE_URL = ""
    assert call_and_validate(send, body=offered, headers=auth).status_code == 400
    assert call_and_validate(send, body={**offered, "unsubscribe": False}, headers=auth).status_code == 202
    assert call_and_validate(send, body={**offered, "unsubscribe": None}, headers=auth).status_code == 400


@pytest.mark.usefixtures("db")
def test_the_sender_identity_answers_match_the_schema(settings):
    """An unverified user's refused send, a new link, the link followed, and a bad link."""
    settings.EMAIL_FROM_ADDRESS = ""
    unverified = UserFactory(unverified=True)
    auth = token_header(unverified)
    send = {"recipients": ["finance@example.org"], "subject": "Urgent wire transfer", "body": "b"}

    assert call_and_validate("POST /api/v1/emails/sent-email/", body=send, headers=auth).status_code == 403
    assert call_and_validate("GET /api/v1/users/me/", headers=auth).json()["email_verified"] is False
    assert call_and_validate("POST /api/v1/users/verify-email/", headers=auth).status_code == 202
    token = parse_qs(urlsplit(email_verification_link(user=unverified, base_url="")).query)["token"][0]
    assert call_and_validate("GET /api/v1/users/verify-email/", query={"token": token + "x"}).status_code == 400
    assert call_and_validate("GET /api/v1/users/verify-email/", query={"token": token}).status_code == 200
    assert call_and_validate("POST /api/v1/users/verify-email/", headers=auth).status_code == 200
    assert call_and_validate("POST /api/v1/emails/sent-email/", body=send, headers=auth).status_code == 202
