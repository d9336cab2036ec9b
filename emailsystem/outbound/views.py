"""webhooks/endpoints/: a user's outbound webhook endpoints (docs/outbound-webhooks.md).

Only a login token or a `full` API key reaches these: the views name no `send_key_actions`,
so a `send` key is refused (users/authentication.py). Another user's endpoint is 404.
"""

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from emailsystem.core.schema import error_responses
from emailsystem.outbound.models import WebhookEndpoint, WebhookMessage
from emailsystem.outbound.selectors import attempt_list, endpoint_list
from emailsystem.outbound.serializers import (
    AttemptSerializer,
    EndpointInputSerializer,
    EndpointSerializer,
    EndpointUpdateSerializer,
    EndpointWithSecretSerializer,
    QueuedSerializer,
)
from emailsystem.outbound.services import (
    attempt_replay,
    endpoint_create,
    endpoint_delete,
    endpoint_secret_rotate,
    endpoint_test,
    endpoint_update,
)
from emailsystem.users.models import User

_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The endpoint's id.")
_DELIVERY_ID = OpenApiParameter(
    "delivery_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The attempt's id (from deliveries/)."
)


def _with_secret(endpoint: WebhookEndpoint, secret: str) -> dict[str, Any]:
    return dict(EndpointWithSecretSerializer({**EndpointSerializer(endpoint).data, "secret": secret}).data)


def _queued(message: WebhookMessage) -> dict[str, Any]:
    return dict(QueuedSerializer(message).data)


@extend_schema_view(
    list=extend_schema(responses={200: EndpointSerializer(many=True), **error_responses(400, 401, 403, 404)}),
    retrieve=extend_schema(parameters=[_ID], responses={200: EndpointSerializer, **error_responses(401, 403, 404)}),
    create=extend_schema(
        request=EndpointInputSerializer,
        responses={201: EndpointWithSecretSerializer, **error_responses(400, 401, 403, 413, 415)},
    ),
    partial_update=extend_schema(
        parameters=[_ID],
        request=EndpointUpdateSerializer,
        responses={200: EndpointSerializer, **error_responses(400, 401, 403, 404, 413, 415)},
    ),
    destroy=extend_schema(parameters=[_ID], responses={204: None, **error_responses(401, 403, 404)}),
)
class WebhookEndpointViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Your outbound webhook endpoints: URLs that receive signed events about your emails.

    **POST** `{"url": "https://...", "events": ["email.delivered", "email.bounced"], "description": "..."}`
    creates one; the answer's `secret` (`whsec_...`) is shown this once. Each event is a POST
    signed the Standard Webhooks way (headers `webhook-id`, `webhook-timestamp`, `webhook-signature`).
    **PATCH** changes `url`, `events`, `description` or `enabled`; **DELETE** removes it.
    """

    serializer_class = EndpointSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    lookup_value_regex = "[^/]+"

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request user
            return WebhookEndpoint.objects.none()
        return endpoint_list(user=self._user())

    def _user(self) -> User:
        user = self.request.user
        assert isinstance(user, User)  # the default permissions let only a logged-in user through
        return user

    def get_serializer_class(self) -> type[BaseSerializer]:
        classes: dict[str, type[BaseSerializer]] = {
            "create": EndpointInputSerializer,
            "partial_update": EndpointUpdateSerializer,
            "deliveries": AttemptSerializer,
        }
        return classes.get(self.action or "", EndpointSerializer)

    def create(self, request: Request) -> Response:
        serializer = EndpointInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint, secret = endpoint_create(user=self._user(), **serializer.validated_data)
        return Response(_with_secret(endpoint, secret), status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        endpoint = self.get_object()
        serializer = EndpointUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = endpoint_update(endpoint=endpoint, **serializer.validated_data)
        return Response(EndpointSerializer(endpoint).data)

    def perform_destroy(self, instance: WebhookEndpoint) -> None:
        endpoint_delete(endpoint=instance)

    @extend_schema(
        parameters=[_ID], request=None, responses={200: EndpointWithSecretSerializer, **error_responses(401, 403, 404)}
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret", url_name="rotate-secret")
    def rotate_secret(self, request: Request, pk: str | None = None) -> Response:
        """A new secret, shown this once; the previous one keeps signing beside it for 24 hours."""
        endpoint, secret = endpoint_secret_rotate(endpoint=self.get_object())
        return Response(_with_secret(endpoint, secret))

    @extend_schema(parameters=[_ID], request=None, responses={202: QueuedSerializer, **error_responses(401, 403, 404)})
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: str | None = None) -> Response:
        """Queue an `endpoint.test` event for this endpoint."""
        return Response(_queued(endpoint_test(endpoint=self.get_object())), status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        parameters=[_ID], responses={200: AttemptSerializer(many=True), **error_responses(400, 401, 403, 404)}
    )
    @action(detail=True, methods=["get"])
    def deliveries(self, request: Request, pk: str | None = None) -> Response:
        """This endpoint's delivery attempts, newest first, paginated."""
        page = self.paginate_queryset(attempt_list(endpoint=self.get_object()))
        return self.get_paginated_response(AttemptSerializer(page, many=True).data)

    @extend_schema(
        parameters=[_ID, _DELIVERY_ID],
        request=None,
        responses={202: QueuedSerializer, **error_responses(401, 403, 404)},
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"deliveries/(?P<delivery_id>[^/]+)/replay",
        url_name="delivery-replay",
    )
    def replay(self, request: Request, pk: str | None = None, delivery_id: str | None = None) -> Response:
        """Queue the attempt's event again (same webhook-id and body), from a first attempt."""
        endpoint = self.get_object()
        digits = delivery_id if delivery_id is not None and delivery_id.isascii() and delivery_id.isdigit() else "0"
        attempt = get_object_or_404(attempt_list(endpoint=endpoint), pk=int(digits))
        return Response(_queued(attempt_replay(attempt=attempt)), status=status.HTTP_202_ACCEPTED)
