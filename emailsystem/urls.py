from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from emailsystem.core import views as core_views
from emailsystem.emails.admin_dashboard import dashboard_view

urlpatterns = [
    path("", RedirectView.as_view(url="/api/v1/", permanent=False)),
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    # Before admin.site.urls, whose catch-all would answer 404 for it.
    path("admin/dashboard/", admin.site.admin_view(dashboard_view), name="admin-dashboard"),
    path("admin/", admin.site.urls),
    path("api-auth/", include("rest_framework.urls")),
    path("api/v1/", core_views.ApiRootView.as_view(), name="api-root"),
    path("api/v1/users/", include("emailsystem.users.urls")),
    path("api/v1/emails/", include("emailsystem.emails.urls")),
    path("api/v1/webhooks/", include("emailsystem.emails.webhooks.urls")),
]
