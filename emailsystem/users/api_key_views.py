"""users/api-keys/: a user's API keys (docs/sending/api-keys.md)."""

import logging
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from emailsystem.core.schema import error_responses
from emailsystem.users.api_keys import api_key_create, api_key_revoke
from emailsystem.users.models import ApiKey, User
from emailsystem.users.selectors import api_key_list
from emailsystem.users.serializers import ApiKeyCreateSerializer, ApiKeyIssuedSerializer, ApiKeySerializer

logger = logging.getLogger(__name__)

_ID = OpenApiParameter(
    "id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The key's id; any other value is 404."
)


@extend_schema_view(
    list=extend_schema(responses={200: ApiKeySerializer(many=True), **error_responses(400, 401, 403, 404)}),
    create=extend_schema(
        request=ApiKeyCreateSerializer,
        responses={201: ApiKeyIssuedSerializer, **error_responses(400, 401, 403, 413, 415)},
    ),
    destroy=extend_schema(parameters=[_ID], responses={204: None, **error_responses(401, 403, 404)}),
)
class ApiKeyViewSet(mixins.ListModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """Your API keys: what an application sends with instead of your login token.

    **POST** `{"name": "billing-app", "scope": "send"}` issues one; the answer's `key` is shown
    this once (only its SHA-256 is stored). Clients send it as `Authorization: Bearer <key>`.
    A `send` key may only send (sent-email, batch, template preview) and read the emails sent;
    a `full` key may do everything you may. **DELETE** `{id}/` revokes a key at once.
    """

    serializer_class = ApiKeySerializer
    # Any id reaches the view, so a malformed one is a JSON 404 after authentication, as elsewhere.
    lookup_value_regex = "[^/]+"

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request user
            return ApiKey.objects.none()
        user = self.request.user
        assert isinstance(user, User)  # the view's permissions let only a logged-in user through
        return api_key_list(user=user)

    def get_serializer_class(self) -> type[BaseSerializer]:
        return ApiKeyCreateSerializer if self.action == "create" else ApiKeySerializer

    def create(self, request: Request) -> Response:
        serializer = ApiKeyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = request.user
        assert isinstance(user, User)  # the view's permissions let only a logged-in user through
        issued = api_key_create(user=user, **serializer.validated_data)
        logger.info(
            "api key issued",
            extra={"user_id": user.pk, "api_key_id": issued.api_key.pk, "scope": issued.api_key.scope},
        )
        # A plain dict, not serializer data: the browsable API would draw its form from the answer's
        # serializer, the key in a text box, instead of the empty form for the next key.
        return Response(dict(ApiKeyIssuedSerializer(issued).data), status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: ApiKey) -> None:
        api_key_revoke(api_key=instance)
        logger.info("api key revoked", extra={"user_id": instance.user_id, "api_key_id": instance.pk})
