"""Admin for templates and the sent-email log. The log is read-only: no way to forge a send here."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from emailsystem.core.exceptions import ApplicationError
from emailsystem.emails.delivery.results import deliveries_requeue
from emailsystem.emails.models import (
    Delivery,
    DeliveryEvent,
    DeliveryStatus,
    EmailTemplate,
    OutboxMessage,
    Recipient,
    SentEmail,
    Suppression,
)


def requeue(modeladmin: admin.ModelAdmin, request: HttpRequest, delivery_ids: QuerySet) -> None:
    try:
        count = deliveries_requeue(delivery_ids=list(delivery_ids))
    except ApplicationError as error:
        modeladmin.message_user(request, error.message, messages.WARNING)
        return
    modeladmin.message_user(
        request, f"Requeued {count} failed recipient(s); they will be sent again.", messages.SUCCESS
    )


@admin.register(EmailTemplate)
class EmailTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "subject", "modified", "created"]
    search_fields = ["name", "subject", "body"]
    readonly_fields = ["created", "modified"]


class ReadOnlyAdminMixin:
    """View (and, for superusers, delete) only: records are written by the service, never by hand."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class DeliveryInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Delivery
    fields = ["recipient", "status", "attempts", "reason", "sent_at", "delivered_at", "updated"]
    readonly_fields = fields
    can_delete = False
    extra = 0
    show_change_link = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Delivery]:
        return super().get_queryset(request).select_related("recipient")


@admin.register(SentEmail)
class SentEmailAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "subject", "sender", "status", "recipient_count", "template_name", "created"]
    list_filter = ["status", "created", ("sender", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["subject", "sender__email", "deliveries__recipient__email"]
    date_hierarchy = "created"
    list_select_related = ["sender"]
    inlines = [DeliveryInline]
    show_full_result_count = False  # a COUNT(*) over the whole log on every page costs more than it tells
    actions = ["requeue_failed"]

    @admin.action(description="Requeue the failed recipients of the selected emails")
    def requeue_failed(self, request: HttpRequest, queryset: QuerySet[SentEmail]) -> None:
        failed = Delivery.objects.filter(sent_email__in=queryset, status=DeliveryStatus.FAILED)
        requeue(self, request, failed.values_list("pk", flat=True))


class DeliveryEventInline(ReadOnlyAdminMixin, admin.TabularInline):
    """SendGrid's events about one recipient, oldest first."""

    model = DeliveryEvent
    fields = ["event", "occurred_at", "detail", "received_at", "sg_event_id"]
    readonly_fields = fields
    can_delete = False
    extra = 0


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Per-recipient status across all emails: find every failure to one address or domain."""

    list_display = [
        "id",
        "recipient",
        "sent_email",
        "status",
        "attempts",
        "reason",
        "sent_at",
        "delivered_at",
        "updated",
    ]
    inlines = [DeliveryEventInline]
    list_filter = ["status", "created"]
    search_fields = ["recipient__email"]
    list_select_related = ["recipient", "sent_email"]
    raw_id_fields = ["sent_email", "recipient"]
    show_full_result_count = False
    actions = ["requeue_failed"]

    @admin.action(description="Requeue the selected failed recipients")
    def requeue_failed(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        requeue(self, request, queryset.values_list("pk", flat=True))


@admin.register(Recipient)
class RecipientAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["email", "created"]
    search_fields = ["email"]


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Sends not yet confirmed by the broker. Rows that stay here mean the broker is unreachable."""

    list_display = ["id", "sent_email", "created", "available_at", "attempts", "last_error"]
    raw_id_fields = ["sent_email"]


@admin.register(Suppression)
class SuppressionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Addresses each user's sends skip. Delete an entry to let that user send to the address again."""

    list_display = ["recipient", "user", "reason", "delivery", "created"]
    list_filter = ["reason", "created"]
    search_fields = ["recipient__email", "user__email"]
    list_select_related = ["recipient", "user"]
    raw_id_fields = ["user", "recipient", "delivery"]
    show_full_result_count = False
