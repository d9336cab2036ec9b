from django.urls import path
from rest_framework.routers import SimpleRouter

from emailsystem.users import views
from emailsystem.users.api_key_views import ApiKeyViewSet

app_name = "users"

router = SimpleRouter()
router.register("api-keys", ApiKeyViewSet, basename="api-key")

urlpatterns = [
    path("register/", views.RegisterView.as_view(), name="register"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("me/", views.MeView.as_view(), name="me"),
    path("verify-email/", views.VerifyEmailView.as_view(), name="verify-email"),
    *router.urls,
]
