from django.contrib.auth import login, logout
from django.contrib.auth.models import AnonymousUser
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from emailsystem.core.schema import error_responses
from emailsystem.users.serializers import LoginSerializer, LogoutSerializer, RegisterSerializer
from emailsystem.users.services import token_get_or_create, token_revoke, user_create
from emailsystem.users.throttles import AuthRateThrottle


def from_browser(request: Request) -> bool:
    """The request came from the browsable API's pages (it asked for HTML), not from a client."""
    return getattr(request.accepted_renderer, "format", None) == "api"


class RegisterView(APIView):
    """Create an account with your email address, a username and a password; then log in.

    As JSON: `{"email": "ada@example.com", "username": "ada", "password": "..."}`.
    """

    permission_classes = [AllowAny]
    # Session only: the browsable API shows who is logged in, and a stale API token sent by
    # a client does not turn registering or logging in into a 401.
    authentication_classes = [SessionAuthentication]
    throttle_classes = [AuthRateThrottle]
    serializer_class = RegisterSerializer

    @extend_schema(
        request=RegisterSerializer,
        responses={
            201: inline_serializer(
                "Registered", {"email": serializers.EmailField(), "username": serializers.CharField()}
            ),
            **error_responses(400, 403, 413, 415, 429),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = RegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = user_create(**serializer.validated_data)
        # A plain dict, not serializer data: the browsable API would draw an empty form for it.
        return Response({"email": user.email, "username": user.username}, status=status.HTTP_201_CREATED)


class LoginView(APIView):
    """Log in with your email address (or username) and password, and get an API token.

    Clients send `{"username": "<your email>", "password": "..."}` (`"email"` works in place of
    `"username"`) and then `Authorization: Token <token>`. Logging in on this page also logs
    you in to these pages.
    """

    permission_classes = [AllowAny]
    authentication_classes = [SessionAuthentication]
    # No DRF throttle: the password check itself is throttled (users.backends), on every login
    # form alike; a throttled attempt is a 429 with Retry-After (users.throttles.LoginThrottled).
    throttle_classes: list = []
    serializer_class = LoginSerializer

    @extend_schema(
        request=LoginSerializer,
        responses={
            200: inline_serializer("LoggedIn", {"email": serializers.EmailField(), "token": serializers.CharField()}),
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
        return Response({"email": user.email, "token": token.key})


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
        token_revoke(user=request.user)
        logout(request._request)
        request.user = AnonymousUser()  # the page drawn for this answer shows nobody logged in
        return Response({})
