from django.contrib.auth import logout
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from emailsystem.core.schema import error_responses
from emailsystem.users.serializers import LoginSerializer, RegisterSerializer
from emailsystem.users.services import token_get_or_create, token_revoke, user_create
from emailsystem.users.throttles import AuthRateThrottle


class RegisterView(APIView):
    """Create an account: {"email", "username", "password"}. Then log in to get a token."""

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
    """Exchange {"username": <your email>, "password"} for an API token ("email" works as the key too)."""

    permission_classes = [AllowAny]
    authentication_classes = [SessionAuthentication]
    throttle_classes = [AuthRateThrottle]
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
        return Response({"email": user.email, "token": token.key})


class LogoutView(APIView):
    """Revoke your API token (every client using it gets 401 afterwards) and end the browser session."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=None,
        responses={200: inline_serializer("LoggedOut", {}), **error_responses(401, 403, 413)},
    )
    def post(self, request: Request) -> Response:
        token_revoke(user=request.user)
        logout(request._request)
        return Response({})
