"""How API clients authenticate: login tokens (`Token <key>`, with an optional maximum age,
TOKEN_MAX_AGE) and API keys (`Bearer <key>`, scoped; docs/sending/api-keys.md); and the
browsable API's session."""

import datetime
import hmac
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.authentication import SessionScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import (
    BaseAuthentication,
    SessionAuthentication,
    TokenAuthentication,
    get_authorization_header,
)
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed, PermissionDenied
from rest_framework.request import Request, is_form_media_type

from emailsystem.core.plain_sql import instance_get, instance_get_by
from emailsystem.users.api_keys import api_key_use_record
from emailsystem.users.models import ApiKey, ApiKeyScope, User, api_key_digest

# Annotations only: both import rest_framework.views, whose APIView reads
# DEFAULT_AUTHENTICATION_CLASSES, this module, while it loads.
if TYPE_CHECKING:
    from drf_spectacular.openapi import AutoSchema
    from rest_framework.views import APIView

TOKEN_EXPIRED = "Token has expired. Log in again to get a new one."  # noqa: S105 (a message, not a secret)


def token_is_expired(token: Token, *, now: datetime.datetime | None = None) -> bool:
    """True when TOKEN_MAX_AGE is set and the token was issued longer ago than that."""
    max_age = settings.TOKEN_MAX_AGE
    if not max_age:
        return False
    return (now or timezone.now()) - token.created > datetime.timedelta(seconds=max_age)


def authorization_scheme(request: Request) -> str:
    """The scheme of the request's Authorization header, lowercased ("token", "bearer"), or ""."""
    return get_authorization_header(request).partition(b" ")[0].decode("latin-1").lower()


class ExpiringTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, refusing tokens older than TOKEN_MAX_AGE with a 401.

    The age comes from `Token.created`, already loaded with the token, so an expiring token
    costs no extra query. Logging in again replaces an expired token
    (`users.services.token_get_or_create`).

    Every API request authenticates, so the token and its user are read with two plain
    SELECTs (`core.plain_sql`): 0.11-0.12 ms each, where DRF's `select_related(...).get()`
    takes 0.37-0.42 ms. Still a read per request, so a revoked token stops working at once.
    """

    def authenticate_credentials(self, key: str) -> tuple[Any, Token]:
        token = instance_get(Token, key) if "\x00" not in key else None
        user = instance_get(get_user_model(), token.user_id) if token is not None else None
        if token is None or user is None:
            raise AuthenticationFailed(_("Invalid token."))
        if not user.is_active:
            raise AuthenticationFailed(_("User inactive or deleted."))
        token.user = user
        if token_is_expired(token):
            raise AuthenticationFailed(TOKEN_EXPIRED, code="token_expired")
        return user, token

    def authenticate_header(self, request: Request) -> str | None:
        # DRF challenges a 401 with the first authentication class's scheme, this one's: a client
        # that presented an API key is told to present a (valid) key again, not a token.
        if authorization_scheme(request) == "bearer":
            return ApiKeyAuthentication.challenge
        return super().authenticate_header(request)


API_KEY_INVALID = "Invalid API key."


class ApiKeyScopeDenied(PermissionDenied):
    """A send-scope key on an operation outside its scope: 403."""

    default_detail = (
        "This API key has the send scope: it may send (POST emails/sent-email/, emails/batch/ and "
        "emails/email-template/{id}/preview/) and read the emails sent (GET emails/sent-email/), nothing else. "
        "Use a key with the full scope or a login token."
    )
    default_code = "api_key_scope"


def send_key_allows(request: Request, view: "APIView | None") -> bool:
    """Whether a send-scope key may make this request: the view names the request's handler in its
    `send_key_actions` (a viewset's action names: "create", "list"; a plain APIView's methods: "post").

    Nothing else is allowed: a view that does not name a handler, or a request no handler takes,
    is refused, so a new endpoint is closed to send keys until it opts in.
    """
    allowed: frozenset[str] = getattr(view, "send_key_actions", frozenset())
    handler = getattr(view, "action", None) or (request.method or "").lower()
    return handler in allowed


class ApiKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer <key>`: a user's API key (users.models.ApiKey), `request.auth`.

    As cheap as a login token (ExpiringTokenAuthentication): two plain SELECTs by unique index,
    the key by its digest and its user by id; no row is written except last_used, at most once a
    minute (api_key_use_record). Measured in-process on the shared 2-core test machine: 0.41 ms
    per key, 0.48 ms per token, where `select_related("user").get(key_hash=...)` took 1.0 ms. A
    wrong, revoked or inactive user's key is a 401 here, never passed on to the next class.

    The scope is checked here, not in a permission class: views replace DEFAULT_PERMISSION_CLASSES
    with their own (templates, preview, the API root), and a send key must be refused on every
    view that has not opted in (send_key_allows), whatever its permissions say.
    """

    challenge = 'Bearer realm="api"'

    def authenticate(self, request: Request) -> tuple[User, ApiKey] | None:
        scheme, _blank, key = get_authorization_header(request).partition(b" ")
        if scheme.lower() != b"bearer":
            return None
        try:
            digest = api_key_digest(key.strip().decode("ascii"))
        except UnicodeDecodeError:
            raise AuthenticationFailed(API_KEY_INVALID) from None
        api_key = instance_get_by(ApiKey, field="key_hash", value=digest)
        # The index compares digests, whose timing tells nothing about a key; compare_digest makes
        # the final check constant-time all the same.
        if api_key is None or not hmac.compare_digest(api_key.key_hash, digest) or api_key.revoked:
            raise AuthenticationFailed(API_KEY_INVALID)
        user = instance_get(get_user_model(), api_key.user_id)
        if user is None or not user.is_active:
            raise AuthenticationFailed(_("User inactive or deleted."))
        api_key.user = user
        if api_key.scope != ApiKeyScope.FULL and not send_key_allows(request, request.parser_context.get("view")):
            raise ApiKeyScopeDenied()
        api_key_use_record(api_key=api_key)
        return user, api_key

    def authenticate_header(self, request: Request) -> str:
        return self.challenge


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """The Bearer scheme in the OpenAPI schema; defined here so that it exists wherever the class does."""

    target_class = ApiKeyAuthentication
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: "AutoSchema") -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key from POST /api/v1/users/api-keys/: `Authorization: Bearer es_...`. "
            "A key with the send scope may only send and read the emails sent; other operations answer 403.",
        }


class BrowserSessionAuthentication(SessionAuthentication):
    """DRF's session authentication (the browsable API's), with the CSRF check of a body that is
    not a form made on Django's own request.

    DRF's check reads `request.POST` on DRF's request, which parses the body: a JSON body that
    does not parse failed the authentication too, and the page answering the parse error showed
    nobody logged in and no forms. Django's request leaves any body but a form's unread, with an
    empty POST, so the token is read from the X-CSRFToken header, as it was.
    """

    def enforce_csrf(self, request: Request) -> None:
        # Django's CSRF middleware takes either request; DRF's stubs name only its own.
        super().enforce_csrf(request if is_form_media_type(request.content_type) else request._request)  # type: ignore[arg-type]


class BrowserSessionScheme(SessionScheme):
    """The session cookie in the OpenAPI schema, as drf-spectacular describes DRF's own class."""

    target_class = "emailsystem.users.authentication.BrowserSessionAuthentication"
