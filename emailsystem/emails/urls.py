from django.urls import path
from rest_framework.routers import SimpleRouter

from emailsystem.emails import views
from emailsystem.emails.batch_views import BatchSendView

app_name = "emails"

router = SimpleRouter()
router.register("email-template", views.EmailTemplateViewSet, basename="email-template")
router.register("sent-email", views.SentEmailViewSet, basename="sent-email")
router.register("suppressions", views.SuppressionViewSet, basename="suppression")

urlpatterns = [*router.urls, path("batch/", BatchSendView.as_view(), name="batch")]
