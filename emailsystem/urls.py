from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from emailsystem.core import views as core_views
from emailsystem.emails.admin_dashboard import dashboard_view
from emailsystem.emails.unsubscribe.links import PATH_PREFIX as UNSUBSCRIBE_PREFIX
from emailsystem.emails.unsubscribe.views import unsubscribe_view

# The admin's navigation sidebar repeats the index and breadcrumbs, and its 276 pixels would
# cut off every change list's table on a 1280-pixel screen.
admin.site.enable_nav_sidebar = False

urlpatterns = [
    path("", RedirectView.as_view(url="/api/v1/", permanent=False)),
    # Browsers ask for /favicon.ico on every page that names no icon (the admin's, for one).
    path("favicon.ico", RedirectView.as_view(url=static("core/favicon.ico"), permanent=True), name="favicon"),
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    # Before admin.site.urls, whose catch-all would answer 404 for it.
    path("admin/dashboard/", admin.site.admin_view(dashboard_view), name="admin-dashboard"),
    path("admin/", admin.site.urls),
    path("api-auth/", include("rest_framework.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/v1/", core_views.ApiRootView.as_view(), name="api-root"),
    path("api/v1/users/", include("emailsystem.users.urls")),
    path("api/v1/emails/", include("emailsystem.emails.urls")),
    path("api/v1/webhooks/", include("emailsystem.emails.webhooks.urls")),
    path("api/v1/webhooks/", include("emailsystem.outbound.urls")),
    # One-click unsubscribe links mailed to recipients (RFC 8058): short, and outside the API.
    path(f"{UNSUBSCRIBE_PREFIX}<str:token>", unsubscribe_view, name="unsubscribe"),
]

# JSON, not Django's HTML page, for a URL under /api/ that matches no route (a non-numeric id).
handler404 = "emailsystem.core.views.not_found"
