"""Who may do what: every route and method of the URLconf against every kind of caller.

One test id per cell (`route-method-role`), each asserting the exact status code. A route is
one `Row`; adding an endpoint to the URLconf means adding its row here (a test below fails
when a URL pattern has no row).

Roles, as a client would present itself:
- anonymous: no credentials;
- user: the owner of the email and the template read below (a token);
- other: another ordinary user (a token);
- staff: an admin, `is_staff` and a superuser (a token);
- clerk: `is_staff` without any model permission (a token; a session on admin pages): the
  admin lets them change nothing, and neither does the API where a write needs a model
  permission (templates);
- inactive: a deactivated user presenting the token it had before;
- revoked: the owner after logging out, presenting the revoked token;
- send_key, full_key: the owner's API keys (`Bearer`), with the send and the full scope;
- revoked_key: an API key of the owner's that revoked itself.
Admin pages are browser pages: there the same roles hold a session instead of a token (keys
have no session: they present the key, which the admin ignores).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from emailsystem.emails.models import EmailTemplate, SentEmail, Suppression, SuppressionReason
from emailsystem.emails.tests.factories import EmailTemplateFactory, sent_email
from emailsystem.emails.unsubscribe.links import UnsubscribeLink, unsubscribe_url
from emailsystem.outbound.models import WebhookAttempt, WebhookEndpoint
from emailsystem.outbound.services import endpoint_create, endpoint_test
from emailsystem.users.models import ApiKey, ApiKeyScope
from emailsystem.users.services import email_verification_link
from emailsystem.users.tests.factories import DEFAULT_PASSWORD, UserFactory, api_key_issue

pytestmark = pytest.mark.django_db

KEY_ROLES = ("send_key", "full_key", "revoked_key")
ROLES = ("anonymous", "user", "other", "staff", "clerk", "inactive", "revoked", *KEY_ROLES)
METHODS = ("get", "post", "put", "patch", "delete")


def codes(
    anonymous: int,
    user: int,
    other: int,
    staff: int,
    clerk: int,
    inactive: int,
    revoked: int,
    *,
    send_key: int = 403,
    full_key: int | None = None,
    revoked_key: int | None = None,
) -> dict[str, int]:
    """Expected status per role. The owner's keys: a send key is refused (403) where the row does
    not say otherwise; a full key gets what its owner gets; a revoked key what a revoked token gets."""
    full_key = user if full_key is None else full_key
    revoked_key = revoked if revoked_key is None else revoked_key
    values = (anonymous, user, other, staff, clerk, inactive, revoked, send_key, full_key, revoked_key)
    return dict(zip(ROLES, values, strict=True))


def everyone(code: int) -> dict[str, int]:
    return dict.fromkeys(ROLES, code)


# Shapes that repeat: an endpoint for any valid token; one for staff only. Invalid tokens
# (inactive, revoked) are 401 everywhere DRF authenticates, even on public reads.
PUBLIC_READ = codes(200, 200, 200, 200, 200, 401, 401)
SIGNED_IN_MISSING = codes(401, 405, 405, 405, 405, 401, 401)  # a signed-in route without the method
# A template route without the method: the method's permission is checked first, so a clerk gets 403.
STAFF_ONLY_MISSING = codes(401, 403, 403, 405, 403, 401, 401)
SESSION_ONLY_MISSING = everyone(405)  # register/login ignore tokens: any caller gets 405
ADMIN_PAGE = codes(302, 302, 302, 200, 403, 302, 302, send_key=302)  # others are sent to the admin's login page
ADMIN_INDEX = codes(302, 302, 302, 200, 200, 302, 302, send_key=302)  # a clerk's index lists nothing


@dataclass(frozen=True)
class World:
    """The objects a row's path and body refer to."""

    user: Any
    template: EmailTemplate
    email: SentEmail
    suppression: Suppression
    api_key: ApiKey  # the owner's, for revoking; the key roles present keys of their own
    endpoint: WebhookEndpoint  # the owner's outbound webhook endpoint
    attempt: WebhookAttempt  # a delivery attempt of the endpoint's, for replay


@dataclass(frozen=True)
class Row:
    route: str  # the URL pattern's name, or its path for unnamed ones
    method: str
    path: Callable[[World], str]
    expected: dict[str, int]
    body: Callable[[World, str], dict] = lambda world, role: {}
    session: bool = False  # a browser page: roles hold a session, not a token


def fixed(path: str) -> Callable[[World], str]:
    return lambda world: path


TEMPLATES = fixed("/api/v1/emails/email-template/")
SENT = fixed("/api/v1/emails/sent-email/")


def template_detail(world: World) -> str:
    return f"/api/v1/emails/email-template/{world.template.pk}/"


def template_preview(world: World) -> str:
    return f"/api/v1/emails/email-template/{world.template.pk}/preview/"


TEMPLATE_CHECK = fixed("/api/v1/emails/email-template/validate/")


def a_context(world: World, role: str) -> dict:
    return {"context": {"name": role, "order": 1}}


def sent_detail(world: World) -> str:
    return f"/api/v1/emails/sent-email/{world.email.pk}/"


def sent_cancel(world: World) -> str:
    return f"/api/v1/emails/sent-email/{world.email.pk}/cancel/"


SUPPRESSIONS = fixed("/api/v1/emails/suppressions/")


def suppression_detail(world: World) -> str:
    return f"/api/v1/emails/suppressions/{world.suppression.pk}/"


ME = fixed("/api/v1/users/me/")
API_KEYS = fixed("/api/v1/users/api-keys/")


def api_key_detail(world: World) -> str:
    return f"/api/v1/users/api-keys/{world.api_key.pk}/"


def a_key(world: World, role: str) -> dict:
    return {"name": f"made-by-{role}", "scope": "send"}


VERIFY_EMAIL = fixed("/api/v1/users/verify-email/")


def verification_link(world: World) -> str:
    """The owner's link, as mailed: anyone holding it may open it (the link is the proof)."""
    return email_verification_link(user=world.user, base_url="")


def new_account(world: World, role: str) -> dict:
    return {"email": f"new-{role}@example.com", "username": f"new-{role}", "password": "plum-orchard-lantern-7"}


def own_credentials(world: World, role: str) -> dict:
    """Each role logs in as itself; anonymous and the owner's keys use the owner's email and password."""
    email = world.user.email if role in {"anonymous", "revoked", *KEY_ROLES} else f"{role}@example.com"
    return {"username": email, "password": DEFAULT_PASSWORD}


def a_template(world: World, role: str) -> dict:
    return {"name": f"made-by-{role}", "subject": "Hi {{ name }}", "body": "Hello {{ name }}"}


def a_send(world: World, role: str) -> dict:
    return {"recipients": ["carol@example.com"], "subject": "Hello", "body": "Hi"}


def unsubscribe_link(world: World) -> str:
    """The one-click link of the owner's email's recipient, as mailed: whoever holds it may use it."""
    delivery = world.email.deliveries.get()
    return unsubscribe_url(base_url="", link=UnsubscribeLink(world.user.pk, delivery.recipient_id, delivery.pk))


BATCH = fixed("/api/v1/emails/batch/")
ENDPOINTS = fixed("/api/v1/webhooks/endpoints/")
# A public address needs no DNS lookup, so the URL check passes without OUTBOUND_WEBHOOKS_ALLOW_PRIVATE.
PUBLIC_HOOK = "https://93.184.215.14/hook"


def an_endpoint(world: World, role: str) -> dict:
    return {"url": PUBLIC_HOOK, "events": ["email.sent"], "description": f"made-by-{role}"}


def endpoint_detail(world: World) -> str:
    return f"/api/v1/webhooks/endpoints/{world.endpoint.pk}/"


def endpoint_path(suffix: str) -> Callable[[World], str]:
    return lambda world: f"/api/v1/webhooks/endpoints/{world.endpoint.pk}/{suffix}"


def attempt_replay(world: World) -> str:
    return f"/api/v1/webhooks/endpoints/{world.endpoint.pk}/deliveries/{world.attempt.pk}/replay/"


OWNER_ONLY_READ = codes(401, 200, 404, 404, 404, 401, 401)


def a_batch(world: World, role: str) -> dict:
    return {"messages": [a_send(world, role), a_send(world, role)]}


ROWS = [
    # users
    Row("users:register", "post", fixed("/api/v1/users/register/"), everyone(201), new_account),
    *[Row("users:register", m, fixed("/api/v1/users/register/"), SESSION_ONLY_MISSING) for m in METHODS if m != "post"],
    # Logging in ignores any Authorization header: a key logs nobody in, and refuses nothing here.
    Row(
        "users:login",
        "post",
        fixed("/api/v1/users/login/"),
        codes(200, 200, 200, 200, 200, 400, 200, send_key=200),
        own_credentials,
    ),
    *[Row("users:login", m, fixed("/api/v1/users/login/"), SESSION_ONLY_MISSING) for m in METHODS if m != "post"],
    Row("users:logout", "post", fixed("/api/v1/users/logout/"), codes(401, 200, 200, 200, 200, 401, 401)),
    *[Row("users:logout", m, fixed("/api/v1/users/logout/"), SIGNED_IN_MISSING) for m in METHODS if m != "post"],
    Row("users:me", "get", ME, codes(401, 200, 200, 200, 200, 401, 401)),
    *[Row("users:me", m, ME, SIGNED_IN_MISSING) for m in METHODS if m != "get"],
    # Opening a link needs no login (an invalid token is still 401); asking for one does.
    Row("users:verify-email", "get", verification_link, codes(200, 200, 200, 200, 200, 401, 401)),
    Row("users:verify-email", "post", VERIFY_EMAIL, codes(401, 200, 200, 200, 200, 401, 401)),
    *[Row("users:verify-email", m, VERIFY_EMAIL, SIGNED_IN_MISSING) for m in ("put", "patch", "delete")],
    # API keys: one's own only; managing them is outside a send key's scope.
    Row("users:api-key-list", "get", API_KEYS, codes(401, 200, 200, 200, 200, 401, 401)),
    Row("users:api-key-list", "post", API_KEYS, codes(401, 201, 201, 201, 201, 401, 401), a_key),
    *[Row("users:api-key-list", m, API_KEYS, SIGNED_IN_MISSING, a_key) for m in ("put", "patch", "delete")],
    Row("users:api-key-detail", "delete", api_key_detail, codes(401, 204, 404, 404, 404, 401, 401)),
    *[
        Row("users:api-key-detail", m, api_key_detail, SIGNED_IN_MISSING, a_key)
        for m in ("get", "post", "put", "patch")
    ],
    # email templates: anyone reads, staff writes
    Row("emails:email-template-list", "get", TEMPLATES, PUBLIC_READ),
    Row("emails:email-template-list", "post", TEMPLATES, codes(401, 403, 403, 201, 403, 401, 401), a_template),
    Row("emails:email-template-list", "put", TEMPLATES, STAFF_ONLY_MISSING, a_template),
    Row("emails:email-template-list", "patch", TEMPLATES, STAFF_ONLY_MISSING, a_template),
    Row("emails:email-template-list", "delete", TEMPLATES, STAFF_ONLY_MISSING),
    Row("emails:email-template-detail", "get", template_detail, PUBLIC_READ),
    Row("emails:email-template-detail", "post", template_detail, STAFF_ONLY_MISSING, a_template),
    Row("emails:email-template-detail", "put", template_detail, codes(401, 403, 403, 200, 403, 401, 401), a_template),
    Row("emails:email-template-detail", "patch", template_detail, codes(401, 403, 403, 200, 403, 401, 401), a_template),
    Row("emails:email-template-detail", "delete", template_detail, codes(401, 403, 403, 204, 403, 401, 401)),
    Row(
        "emails:email-template-preview",
        "post",
        template_preview,
        codes(401, 200, 200, 200, 200, 401, 401, send_key=200),
        a_context,
    ),
    *[
        Row("emails:email-template-preview", m, template_preview, SIGNED_IN_MISSING, a_context)
        for m in METHODS
        if m != "post"
    ],
    Row("emails:email-template-validate", "post", TEMPLATE_CHECK, codes(401, 403, 403, 200, 403, 401, 401), a_template),
    *[
        Row("emails:email-template-validate", m, TEMPLATE_CHECK, STAFF_ONLY_MISSING, a_template)
        for m in METHODS
        if m != "post"
    ],
    # the log: one's own only; sending and reading the log are what a send key may do
    Row("emails:sent-email-list", "get", SENT, codes(401, 200, 200, 200, 200, 401, 401, send_key=200)),
    Row("emails:sent-email-list", "post", SENT, codes(401, 202, 202, 202, 202, 401, 401, send_key=202), a_send),
    Row("emails:batch", "post", BATCH, codes(401, 202, 202, 202, 202, 401, 401, send_key=202), a_batch),
    *[Row("emails:batch", m, BATCH, SIGNED_IN_MISSING, a_batch) for m in METHODS if m != "post"],
    *[Row("emails:sent-email-list", m, SENT, SIGNED_IN_MISSING, a_send) for m in ("put", "patch", "delete")],
    Row("emails:sent-email-detail", "get", sent_detail, codes(401, 200, 404, 404, 404, 401, 401, send_key=200)),
    *[
        Row("emails:sent-email-detail", m, sent_detail, SIGNED_IN_MISSING, a_send)
        for m in ("post", "put", "patch", "delete")
    ],
    # Cancel: the sender's own email only (this one is not scheduled, so the owner gets 409).
    Row("emails:sent-email-cancel", "post", sent_cancel, codes(401, 409, 404, 404, 404, 401, 401)),
    *[Row("emails:sent-email-cancel", m, sent_cancel, SIGNED_IN_MISSING) for m in ("get", "put", "patch", "delete")],
    # probes and pages that need no credentials (and ignore them)
    # The user's suppression list: their own entries only; another's entry is 404, as if absent.
    Row("emails:suppression-list", "get", SUPPRESSIONS, codes(401, 200, 200, 200, 200, 401, 401)),
    *[Row("emails:suppression-list", m, SUPPRESSIONS, SIGNED_IN_MISSING) for m in ("post", "put", "patch", "delete")],
    Row("emails:suppression-detail", "delete", suppression_detail, codes(401, 204, 404, 404, 404, 401, 401)),
    *[
        Row("emails:suppression-detail", m, suppression_detail, SIGNED_IN_MISSING)
        for m in ("get", "post", "put", "patch")
    ],
    # SendGrid's Event Webhook: no credentials count, only the signature (none here, so 403).
    Row("webhooks:sendgrid", "post", fixed("/api/v1/webhooks/sendgrid/"), everyone(403), a_send),
    *[Row("webhooks:sendgrid", m, fixed("/api/v1/webhooks/sendgrid/"), everyone(405)) for m in METHODS if m != "post"],
    # Outbound webhook endpoints: one's own only (another's is 404); outside a send key's scope.
    Row("outbound:endpoint-list", "get", ENDPOINTS, codes(401, 200, 200, 200, 200, 401, 401)),
    Row("outbound:endpoint-list", "post", ENDPOINTS, codes(401, 201, 201, 201, 201, 401, 401), an_endpoint),
    *[Row("outbound:endpoint-list", m, ENDPOINTS, SIGNED_IN_MISSING, an_endpoint) for m in ("put", "patch", "delete")],
    Row("outbound:endpoint-detail", "get", endpoint_detail, OWNER_ONLY_READ),
    Row("outbound:endpoint-detail", "patch", endpoint_detail, OWNER_ONLY_READ, an_endpoint),
    Row("outbound:endpoint-detail", "delete", endpoint_detail, codes(401, 204, 404, 404, 404, 401, 401)),
    *[Row("outbound:endpoint-detail", m, endpoint_detail, SIGNED_IN_MISSING, an_endpoint) for m in ("post", "put")],
    Row("outbound:endpoint-rotate-secret", "post", endpoint_path("rotate-secret/"), OWNER_ONLY_READ),
    *[
        Row("outbound:endpoint-rotate-secret", m, endpoint_path("rotate-secret/"), SIGNED_IN_MISSING)
        for m in METHODS
        if m != "post"
    ],
    Row("outbound:endpoint-test", "post", endpoint_path("test/"), codes(401, 202, 404, 404, 404, 401, 401)),
    *[Row("outbound:endpoint-test", m, endpoint_path("test/"), SIGNED_IN_MISSING) for m in METHODS if m != "post"],
    Row("outbound:endpoint-deliveries", "get", endpoint_path("deliveries/"), OWNER_ONLY_READ),
    *[
        Row("outbound:endpoint-deliveries", m, endpoint_path("deliveries/"), SIGNED_IN_MISSING)
        for m in METHODS
        if m != "get"
    ],
    Row("outbound:endpoint-delivery-replay", "post", attempt_replay, codes(401, 202, 404, 404, 404, 401, 401)),
    *[Row("outbound:endpoint-delivery-replay", m, attempt_replay, SIGNED_IN_MISSING) for m in METHODS if m != "post"],
    # One-click unsubscribe (RFC 8058): the signed link is the only authority; credentials count for
    # nothing. A GET changes nothing; the one-click POST is a form field, so this JSON body is 400.
    Row("unsubscribe", "get", unsubscribe_link, everyone(200)),
    Row("unsubscribe", "post", unsubscribe_link, everyone(400), a_send),
    *[Row("unsubscribe", m, unsubscribe_link, everyone(405)) for m in ("put", "patch", "delete")],
    # The OpenAPI schema and Swagger UI: public documents that read no credentials at all.
    Row("schema", "get", fixed("/api/schema/"), everyone(200)),
    *[Row("schema", m, fixed("/api/schema/"), everyone(405)) for m in METHODS if m != "get"],
    Row("swagger-ui", "get", fixed("/api/docs/"), everyone(200)),
    *[Row("swagger-ui", m, fixed("/api/docs/"), everyone(405)) for m in METHODS if m != "get"],
    Row("healthz", "get", fixed("/healthz"), everyone(200)),
    Row("readyz", "get", fixed("/readyz"), everyone(200)),
    Row("api-root", "get", fixed("/api/v1/"), PUBLIC_READ),
    Row("root", "get", fixed("/"), everyone(302)),
    Row("favicon", "get", fixed("/favicon.ico"), everyone(301)),
    Row("rest_framework:login", "get", fixed("/api-auth/login/"), everyone(200)),
    # the admin: staff sessions only
    Row("admin:index", "get", fixed("/admin/"), ADMIN_INDEX, session=True),
    Row("admin-dashboard", "get", fixed("/admin/dashboard/"), ADMIN_PAGE, session=True),
    Row("admin:users_user_changelist", "get", fixed("/admin/users/user/"), ADMIN_PAGE, session=True),
    Row("admin:emails_sentemail_changelist", "get", fixed("/admin/emails/sentemail/"), ADMIN_PAGE, session=True),
]


@pytest.fixture
def world() -> World:
    user = UserFactory.create(username="user", email="user@example.com")
    email = sent_email(user=user)
    suppression = Suppression.objects.create(
        user=user, recipient=email.deliveries.get().recipient, reason=SuppressionReason.UNSUBSCRIBE
    )
    endpoint, _secret = endpoint_create(user=user, url=PUBLIC_HOOK, events=["email.sent"])
    attempt = WebhookAttempt.objects.create(
        message=endpoint_test(endpoint=endpoint), endpoint=endpoint, attempt=1, status_code=500
    )
    return World(
        user=user,
        template=EmailTemplateFactory.create(),
        email=email,
        suppression=suppression,
        api_key=api_key_issue(user, name="revocable").api_key,
        endpoint=endpoint,
        attempt=attempt,
    )


def client_for(role: str, world: World, *, session: bool) -> APIClient:
    """A client presenting `role`'s credentials: a token, or for browser pages a session."""
    client = APIClient()
    if role == "anonymous":
        return client
    if role in KEY_ROLES:
        scope = ApiKeyScope.SEND if role == "send_key" else ApiKeyScope.FULL
        issued = api_key_issue(world.user, scope, name=role)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.key}")
        if role == "revoked_key":  # revokes itself as a client would
            assert client.delete(f"/api/v1/users/api-keys/{issued.api_key.pk}/").status_code == 204
        return client
    people = {
        "user": lambda: world.user,
        "revoked": lambda: world.user,
        "other": lambda: UserFactory(username="other", email="other@example.com"),
        "staff": lambda: UserFactory(username="staff", email="staff@example.com", is_staff=True, is_superuser=True),
        "clerk": lambda: UserFactory(username="clerk", email="clerk@example.com", is_staff=True),
        "inactive": lambda: UserFactory(username="inactive", email="inactive@example.com"),
    }
    person = people[role]()
    token = Token.objects.create(user=person)
    if session:
        client.force_login(person)
    else:
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    if role == "inactive":
        person.is_active = False
        person.save()
    if role == "revoked":  # logs out as a client would: the token and the session end
        assert client.post("/api/v1/users/logout/", HTTP_AUTHORIZATION=f"Token {token.key}").status_code == 200
    return client


CELLS = [pytest.param(row, role, id=f"{row.route}-{row.method}-{role}") for row in ROWS for role in ROLES]


def stored_state() -> tuple:
    """Everything a refused request must leave as it was."""
    return (
        list(EmailTemplate.objects.order_by("pk").values()),
        list(SentEmail.objects.order_by("pk").values_list("pk", "sender_id", "subject")),
        list(get_user_model().objects.order_by("pk").values_list("pk", "is_active", "is_staff", "verified_email")),
        list(Suppression.objects.order_by("pk").values_list("pk", "user_id", "recipient_id")),
        # Not last_used: a request that authenticates and is then refused was still a use of the key.
        list(ApiKey.objects.order_by("pk").values_list("pk", "user_id", "scope", "revoked_at")),
        list(WebhookEndpoint.objects.order_by("pk").values()),
    )


@pytest.mark.parametrize(("row", "role"), CELLS)
def test_authorization_matrix(world, row, role):
    client = client_for(role, world, session=row.session)
    before = stored_state()

    response = getattr(client, row.method)(row.path(world), row.body(world, role), format="json")

    assert response.status_code == row.expected[role], getattr(response, "data", response.content[:200])
    if response.status_code >= 400:
        assert stored_state() == before, "a refused request changed stored data"


def route_names(resolver: URLResolver, namespace: str = "") -> set[str]:
    """Every route of the URLconf: `namespace:name`, or for an unnamed one its path ("root" for "")."""
    found = set()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            found |= route_names(entry, f"{entry.namespace}:" if entry.namespace else namespace)
        elif isinstance(entry, URLPattern):
            found.add(
                f"{namespace}{entry.name or entry.pattern}" if entry.name or namespace else str(entry.pattern) or "root"
            )
    return found


# The admin's many model pages share the permission of the admin rows above; the browsable
# API's log-out link only ends a session.
NOT_IN_MATRIX = {"rest_framework:logout"}


def test_every_route_of_the_urlconf_has_a_row():
    routes = {name for name in route_names(get_resolver()) if not name.startswith("admin:")}

    assert routes - NOT_IN_MATRIX - {row.route for row in ROWS} == set()
