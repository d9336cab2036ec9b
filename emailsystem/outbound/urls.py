from rest_framework.routers import SimpleRouter

from emailsystem.outbound.views import WebhookEndpointViewSet

app_name = "outbound"

router = SimpleRouter()
router.register("endpoints", WebhookEndpointViewSet, basename="endpoint")

urlpatterns = router.urls
