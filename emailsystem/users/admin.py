from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserChangeForm as DjangoUserChangeForm
from django.contrib.auth.forms import UserCreationForm as DjangoUserCreationForm
from django.db.models import Field, QuerySet
from django.http import HttpRequest
from rest_framework.authtoken.models import Token

from emailsystem.core.links import public_base_url
from emailsystem.users.api_keys import api_keys_revoke
from emailsystem.users.models import ApiKey, User
from emailsystem.users.services import (
    email_verification_send,
    login_attempts_clear,
    token_revoke,
    user_email_verified_set,
)

EMAIL_VERIFIED_HELP = (
    "Ticked: emails this user sends go From this address (or with Reply-To it, under EMAIL_FROM_ADDRESS). "
    "Tick it only for an address you know is theirs. Changing the address un-ticks it unless you tick it again."
)


def email_verified_field() -> forms.BooleanField:
    return forms.BooleanField(required=False, label="Email address verified", help_text=EMAIL_VERIFIED_HELP)


class UserCreationForm(DjangoUserCreationForm):
    email_verified = email_verified_field()

    class Meta:
        model = User
        fields = ("email", "username")


class UserChangeForm(DjangoUserChangeForm):
    email_verified = email_verified_field()

    class Meta:
        model = User
        fields = "__all__"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["email_verified"].initial = self.instance.email_verified


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
    list_display = [
        "email",
        "username",
        "address_verified",
        "is_active",
        "is_staff",
        "daily_quota",
        "date_joined",
        "last_login",
    ]
    list_filter = ["is_active", "is_staff", "is_superuser", "date_joined"]
    search_fields = ["email", "username", "first_name", "last_name"]
    ordering = ["email"]
    actions = ["revoke_tokens", "allow_logging_in_now", "verify_addresses", "send_verification_links"]
    readonly_fields = ["email_verified_at"]
    fieldsets = (
        (None, {"fields": ("email", "username", "password")}),
        ("Sending", {"fields": ("email_verified", "email_verified_at", "daily_quota")}),
        ("Personal info", {"fields": ("first_name", "last_name")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fields = ("email", "username", "password1", "password2", "email_verified")
    add_fieldsets = ((None, {"classes": ("wide",), "fields": add_fields}),)

    @admin.display(boolean=True, description="verified")
    def address_verified(self, user: User) -> bool:
        return user.email_verified

    def save_model(self, request: HttpRequest, obj: User, form: forms.ModelForm, change: bool) -> None:
        super().save_model(request, obj, form, change)
        # Only a tick changed by the admin grants or revokes; an untouched one leaves the address
        # as it is, so a new address stays unverified.
        if "email_verified" in form.changed_data:
            user_email_verified_set(user=obj, verified=form.cleaned_data["email_verified"])

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

    @admin.action(description="Verify the addresses of the selected users (they may send from them)")
    def verify_addresses(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        users = [user for user in queryset if user.email]
        for user in users:
            user_email_verified_set(user=user, verified=True)
        self.message_user(request, f"Verified {len(users)} address(es).", messages.SUCCESS)

    @admin.action(description="Mail a verification link to the selected users with an unverified address")
    def send_verification_links(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        base_url = public_base_url(request)
        sent = sum(email_verification_send(user=user, base_url=base_url) for user in queryset)
        self.message_user(request, f"Mailed {sent} verification link(s).", messages.SUCCESS)

    def formfield_for_dbfield(self, db_field: Field, request: HttpRequest, **kwargs: Any) -> forms.Field | None:
        if db_field.name == "email":
            kwargs["widget"] = forms.EmailInput(attrs={"autocomplete": "email"})
        return super().formfield_for_dbfield(db_field, request, **kwargs)


class RevokedFilter(admin.SimpleListFilter):
    title = "revoked"
    parameter_name = "revoked"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> QuerySet[ApiKey]:
        if self.value() in ("yes", "no"):
            return queryset.filter(revoked_at__isnull=self.value() == "no")
        return queryset


# Every field, all read-only: nothing about a key is edited after it is issued (revoke it instead).
API_KEY_FIELDS = ("user", "name", "scope", "prefix", "created", "last_used", "revoked_at")


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Every user's API keys: whose, what scope, when last used; revoke them here.

    Keys are issued through the API only (users/api-keys/), which shows the key to its owner once:
    nothing here shows a key or its digest, and there is no add form that could.
    """

    list_display = ["prefix", "name", "user", "scope", "created", "last_used", "is_revoked"]
    list_filter = ["scope", RevokedFilter, "created"]
    list_select_related = ["user"]
    search_fields = ["prefix", "name", "user__email", "user__username"]
    ordering = ["-created", "-pk"]
    actions = ["revoke"]
    fields = readonly_fields = API_KEY_FIELDS

    @admin.display(boolean=True, description="revoked", ordering="revoked_at")
    def is_revoked(self, api_key: ApiKey) -> bool:
        return api_key.revoked

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Revoke the selected API keys", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        revoked = api_keys_revoke(api_keys=queryset)
        self.message_user(request, f"Revoked {revoked} API key(s).", messages.SUCCESS)
