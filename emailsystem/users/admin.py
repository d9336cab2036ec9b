from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserChangeForm as DjangoUserChangeForm
from django.contrib.auth.forms import UserCreationForm as DjangoUserCreationForm
from django.db.models import QuerySet
from django.http import HttpRequest
from rest_framework.authtoken.models import Token

from emailsystem.users.models import User
from emailsystem.users.services import login_attempts_clear, token_revoke


class UserCreationForm(DjangoUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "username")


class UserChangeForm(DjangoUserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


class TokenInline(admin.TabularInline):
    """The user's API token: visible, and revocable by deleting it here."""

    model = Token
    fields = ["key", "created"]
    readonly_fields = ["key", "created"]
    extra = 0
    max_num = 0
    can_delete = True
    verbose_name = "API token"


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    inlines = [TokenInline]
    list_display = ["email", "username", "is_active", "is_staff", "daily_quota", "date_joined", "last_login"]
    list_filter = ["is_active", "is_staff", "is_superuser", "date_joined"]
    search_fields = ["email", "username", "first_name", "last_name"]
    ordering = ["email"]
    actions = ["revoke_tokens", "allow_logging_in_now"]
    fieldsets = (
        (None, {"fields": ("email", "username", "password")}),
        ("Sending", {"fields": ("daily_quota",)}),
        ("Personal info", {"fields": ("first_name", "last_name")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "username", "password1", "password2")}),)

    @admin.action(description="Revoke the API tokens of the selected users")
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        revoked = sum(token_revoke(user=user) for user in queryset)
        self.message_user(request, f"Revoked {revoked} token(s).", messages.SUCCESS)

    @admin.action(
        description="Let the selected users log in again now (forget their failed log-in attempts)",
        permissions=["change"],
    )
    def allow_logging_in_now(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        cleared = sum(login_attempts_clear(user=user) for user in queryset)
        self.message_user(request, f"Cleared the log-in lock of {cleared} user(s).", messages.SUCCESS)

    def formfield_for_dbfield(self, db_field, request, **kwargs):  # type: ignore[no-untyped-def]
        if db_field.name == "email":
            kwargs["widget"] = forms.EmailInput(attrs={"autocomplete": "email"})
        return super().formfield_for_dbfield(db_field, request, **kwargs)
