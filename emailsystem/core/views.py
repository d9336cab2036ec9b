from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from django.views.decorators.cache import never_cache
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from emailsystem.core.readiness import readiness


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. Deliberately checks nothing else."""
    return JsonResponse({"status": "ok"})


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: 503 when the database is unreachable; the broker's state is reported too."""
    ready, checks = readiness()
    return JsonResponse({"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """404 for a URL no route matches: JSON under /api/ (as every API error), Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


class ApiRootView(APIView):
    """The email service API: send email from templates (or ad hoc) and read back what you sent."""

    permission_classes = [AllowAny]

    @property
    def description(self) -> str:
        """The page's description (DRF reads `description` before the docstring): the next step for who is here."""
        request = getattr(self, "request", None)
        if request is not None and request.user.is_authenticated:
            step = "Send email at **sent-email**; your log of what you sent is on the same page."
            if not request.user.email_verified:
                step += (
                    f" Your address {request.user.email} is not verified yet: follow the link mailed to it "
                    "(**verify-email** mails a new one) to send from it."
                )
        else:
            step = (
                "Register, then log in (top right, or at **login**) to send; templates are public to read. "
                "Registering mails a link to your address: follow it to send from that address."
            )
        return f"{self.__class__.__doc__}\n\n{step}"

    @extend_schema(
        tags=["root"],
        responses=inline_serializer(
            "ApiRoot",
            {
                name: serializers.URLField()
                for name in (
                    "register",
                    "login",
                    "logout",
                    "me",
                    "verify-email",
                    "api-keys",
                    "email-template",
                    "sent-email",
                )
            },
        ),
    )
    def get(self, request: Request) -> Response:
        def link(name: str) -> str:
            return reverse(name, request=request)

        return Response(
            {
                "register": link("users:register"),
                "login": link("users:login"),
                "logout": link("users:logout"),
                "me": link("users:me"),
                "verify-email": link("users:verify-email"),
                "api-keys": link("users:api-key-list"),
                "email-template": link("emails:email-template-list"),
                "sent-email": link("emails:sent-email-list"),
                "suppressions": link("emails:suppression-list"),
            }
        )
