"""Outbound webhook endpoints and their delivery attempts. Secrets are never shown; attempts are read-only."""

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from emailsystem.core.exceptions import ApplicationError
from emailsystem.emails.admin.common import ReadOnlyAdminMixin
from emailsystem.outbound.models import WebhookAttempt, WebhookEndpoint, WebhookMessage
from emailsystem.outbound.services import endpoint_url_check


class AttemptInline(ReadOnlyAdminMixin, admin.TabularInline):
    """The endpoint's latest attempts."""

    model = WebhookAttempt
    fields = ("created", "message", "attempt", "status_code", "duration_ms", "error", "next_retry_at")
    readonly_fields = fields
    can_delete = False
    extra = 0
    ordering = ["-created", "-id"]
    max_num = 0
    show_change_link = True

    def get_queryset(self, request: HttpRequest) -> QuerySet[WebhookAttempt]:
        # An inline cannot slice its queryset (the formset filters it again); the change list of attempts has them all.
        return super().get_queryset(request).select_related("message")


class EndpointForm(forms.ModelForm):
    """An admin's URL passes the check the API applies (https, public addresses only, unless
    OUTBOUND_WEBHOOKS_ALLOW_PRIVATE)."""

    # A URL typed without a scheme is taken as https://, the only scheme endpoints may use.
    url = forms.URLField(assume_scheme="https", max_length=WebhookEndpoint._meta.get_field("url").max_length)

    class Meta:
        model = WebhookEndpoint
        fields = ["user", "url", "description", "events", "enabled", "disabled_reason"]

    def clean_url(self) -> str:
        url: str = self.cleaned_data["url"]
        if "url" in self.changed_data:
            try:
                endpoint_url_check(url)
            except ApplicationError as error:
                raise forms.ValidationError(error.message) from None
        return url


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    """Users' endpoints: an admin may disable or re-enable one, or change where it points; never see its secret."""

    list_display = ["id", "user", "url", "enabled", "disabled_reason", "failing_since", "created"]
    list_filter = ["enabled", "created"]
    search_fields = ["url", "user__email"]
    raw_id_fields = ["user"]
    fields = ["user", "url", "description", "events", "enabled", "disabled_reason", "failing_since", "created"]
    readonly_fields = ["failing_since", "created"]
    inlines = [AttemptInline]
    form = EndpointForm
    ordering = ["-id"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # an endpoint needs a secret, made by the API (POST webhooks/endpoints/)


@admin.register(WebhookMessage)
class WebhookMessageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Events recorded for endpoints; `publish after` set means not yet handed to RabbitMQ."""

    list_display = ["id", "endpoint", "event_type", "webhook_id", "state", "attempts", "created", "publish_after"]
    list_filter = ["state", "event_type"]
    search_fields = ["webhook_id"]
    raw_id_fields = ["endpoint"]
    ordering = ["-id"]
    show_full_result_count = False


@admin.register(WebhookAttempt)
class WebhookAttemptAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every delivery attempt, newest first."""

    list_display = [
        "id",
        "endpoint",
        "message",
        "attempt",
        "status_code",
        "duration_ms",
        "error",
        "next_retry_at",
        "created",
    ]
    list_filter = ["status_code", "created"]
    list_select_related = ["message", "endpoint"]
    raw_id_fields = ["endpoint", "message"]
    ordering = ["-id"]
    show_full_result_count = False
