"""Admin for templates and the sent-email log. The log is read-only: no way to forge a send here."""

from django.contrib import admin
from django.http import HttpRequest

from emailsystem.emails.models import Delivery, EmailTemplate, Recipient, SentEmail


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
    fields = ["recipient", "status", "attempts", "reason", "sent_at", "updated"]
    readonly_fields = fields
    can_delete = False
    extra = 0
    show_change_link = False


@admin.register(SentEmail)
class SentEmailAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "subject", "sender", "status", "recipient_count", "template_name", "created"]
    list_filter = ["status", "created", ("sender", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["subject", "sender__email", "deliveries__recipient__email"]
    date_hierarchy = "created"
    list_select_related = ["sender"]
    inlines = [DeliveryInline]
    show_full_result_count = False  # a COUNT(*) over the whole log on every page costs more than it tells


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Per-recipient status across all emails: find every failure to one address or domain."""

    list_display = ["id", "recipient", "sent_email", "status", "attempts", "reason", "sent_at", "updated"]
    list_filter = ["status", "created"]
    search_fields = ["recipient__email"]
    list_select_related = ["recipient", "sent_email"]
    raw_id_fields = ["sent_email", "recipient"]
    show_full_result_count = False


@admin.register(Recipient)
class RecipientAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["email", "created"]
    search_fields = ["email"]
