from typing import Any

from django.contrib.auth import login, logout
from django.contrib.auth.models import AnonymousUser
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from emailsystem.core.links import public_base_url
from emailsystem.core.schema import error_responses
from emailsystem.users.authentication import BrowserSessionAuthentication
from emailsystem.users.models import User
from emailsystem.users.serializers import (
    IdentitySerializer,
    LoginSerializer,
    LogoutSerializer,
    RegisterSerializer,
    VerificationAnswerSerializer,
    VerifyEmailQuerySerializer,
    VerifyEmailRequestSerializer,
)
from emailsystem.users.services import (
    email_verification_send,
    email_verify,
    registration_check,
    token_get_or_create,
    token_revoke,
    user_register,
    verification_link_lifetime,
)
from emailsystem.users.throttles import AuthRateThrottle


def from_browser(request: Request) -> bool:
    """The request came from the browsable API's pages (it asked for HTML), not from a client."""
    return getattr(request.accepted_renderer, "format", None) == "api"


class RegisterView(APIView):
    """Create an account with your email address, a username and a password; then log in.

    As JSON: `{"email": "ada@example.com", "username": "ada", "password": "..."}`. A link is mailed
    to the address: follow it to send email from that address.
    """

    permission_classes = [AllowAny]
    # Session only: the browsable API shows who is logged in, and a stale API token sent by
    # a client does not turn registering or logging in into a 401.
    authentication_classes = [BrowserSessionAuthentication]
    throttle_classes = [AuthRateThrottle]
    serializer_class = RegisterSerializer

    @extend_schema(
        request=RegisterSerializer,
        responses={
            201: inline_serializer(
                "Registered",
                {
                    "email": serializers.EmailField(),
                    "username": serializers.CharField(),
                    "email_verified": serializers.BooleanField(),
                    "message": serializers.CharField(),
                },
            ),
            **error_responses(400, 403, 413, 415, 429),
        },
    )
    def post(self, request: Request) -> Response:
        registration_check()  # closed: 403 whatever was sent
        serializer = RegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = user_register(**serializer.validated_data, base_url=public_base_url(request._request))
        # A plain dict, not serializer data: the browsable API would draw an empty form for it.
        return Response(
            {
                "email": user.email,
                "username": user.username,
                "email_verified": user.email_verified,
                "message": f"We mailed a link to {user.email}; follow it within {verification_link_lifetime()} "
                "to send email from this address.",
            },
            status=status.HTTP_201_CREATED,
        )


class LoginView(APIView):
    """Log in with your email address (or username) and password, and get an API token.

    Clients send `{"username": "<your email>", "password": "..."}` (`"email"` works in place of
    `"username"`) and then `Authorization: Token <token>`. Logging in on this page also logs
    you in to these pages.
    """

    permission_classes = [AllowAny]
    authentication_classes = [BrowserSessionAuthentication]
    # No DRF throttle: the password check itself is throttled (users.backends), on every login
    # form alike; a throttled attempt is a 429 with Retry-After (users.throttles.LoginThrottled).
    throttle_classes: list = []
    serializer_class = LoginSerializer

    @extend_schema(
        request=LoginSerializer,
        responses={
            200: inline_serializer(
                "LoggedIn",
                {
                    "email": serializers.EmailField(),
                    "token": serializers.CharField(),
                    "email_verified": serializers.BooleanField(),
                },
            ),
            **error_responses(400, 403, 413, 415, 429),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = LoginSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        user = serializer.validated_data["user"]
        token = token_get_or_create(user=user)
        if from_browser(request):
            # A person on the login page expects to be logged in to the pages too, as with the
            # navbar's "Log in". Clients get only the token: no session, no cookie.
            login(request._request, user)
            request.user = user
        return Response({"email": user.email, "token": token.key, "email_verified": user.email_verified})


class LogoutView(APIView):
    """Log out: revoke your API token (every client using it gets 401 afterwards) and end this browser session."""

    permission_classes = [IsAuthenticated]
    # No fields; it gives the browsable API a form with just the button.
    serializer_class = LogoutSerializer

    @extend_schema(
        request=None,
        responses={200: inline_serializer("LoggedOut", {}), **error_responses(401, 403, 413)},
    )
    def post(self, request: Request) -> Response:
        user = request.user
        assert isinstance(user, User)  # the view's permissions let only a logged-in user through
        token_revoke(user=user)
        logout(request._request)
        request.user = AnonymousUser()  # the page drawn for this answer shows nobody logged in
        return Response({})


class MeView(APIView):
    """You: your address and whether it is verified (only a verified address is used as From)."""

    @extend_schema(responses={200: IdentitySerializer, **error_responses(401, 403)})
    def get(self, request: Request) -> Response:
        return Response(IdentitySerializer(request.user).data)


class VerifyEmailView(APIView):
    """Verify your email address: open the link mailed to it (`GET ?token=...`).

    Until it is verified, your emails go From the service's own address (EMAIL_FROM_ADDRESS) or,
    where it has none, are refused. Logged in, **POST** here mails you a new link.
    """

    serializer_class = VerifyEmailRequestSerializer

    def get_permissions(self) -> list[Any]:
        # The link is the proof: whoever holds it may open it, logged in or not.
        return [AllowAny()] if self.request.method == "GET" else [IsAuthenticated()]

    def get_throttles(self) -> list[BaseThrottle]:
        # Asking for a link mails someone, so it counts like a log-in attempt; opening one mails nobody.
        return [AuthRateThrottle()] if self.request.method == "POST" else []

    @extend_schema(
        parameters=[VerifyEmailQuerySerializer],
        responses={
            200: OpenApiResponse(VerificationAnswerSerializer, description="The address is verified."),
            **error_responses(400, 401),
        },
    )
    def get(self, request: Request) -> Response:
        query = VerifyEmailQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        user = email_verify(token=query.validated_data["token"])
        message = f"{user.email} is verified: the emails you send now use it."
        return Response({"message": message, "email": user.email, "email_verified": True})

    @extend_schema(
        request=None,
        responses={
            200: OpenApiResponse(VerificationAnswerSerializer, description="Already verified: nothing was mailed."),
            202: OpenApiResponse(VerificationAnswerSerializer, description="A new link was mailed to your address."),
            **error_responses(401, 403, 413, 429),
        },
    )
    def post(self, request: Request) -> Response:
        user = request.user
        assert isinstance(user, User)  # the view's permissions let only a logged-in user through
        if not email_verification_send(user=user, base_url=public_base_url(request._request)):
            message = f"{user.email} is already verified."
            return Response({"message": message, "email": user.email, "email_verified": True})
        message = (
            f"We mailed a new link to {user.email}; follow it within {verification_link_lifetime()}. "
            "Earlier links still work."
        )
        return Response(
            {"message": message, "email": user.email, "email_verified": False}, status=status.HTTP_202_ACCEPTED
        )
