"""Per-recipient deliveries across all emails, with SendGrid's events, and the outbox."""

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import Truncator

from emailsystem.emails.admin.common import ReadOnlyAdminMixin, RequeueAdminMixin, requeue
from emailsystem.emails.models import Delivery, DeliveryEvent, OutboxMessage
from emailsystem.emails.selectors import delivery_search

# Characters of a failure reason the list shows; the full text is in the cell's tooltip and on the delivery's page.
REASON_LIST_CHARS = 60


class DeliveryEventInline(ReadOnlyAdminMixin, admin.TabularInline):
    """SendGrid's events about one recipient, oldest first."""

    model = DeliveryEvent
    fields = ("event", "occurred_at", "detail", "received_at", "sg_event_id")
    readonly_fields = fields
    can_delete = False
    extra = 0


@admin.register(Delivery)
class DeliveryAdmin(RequeueAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Per-recipient status across all emails, newest first: find every failure to one address or domain."""

    # Fits a 1280-pixel screen beside the filters; sent_at and delivered_at are on each delivery's page.
    list_display = ["id", "recipient", "email_link", "status", "attempts", "short_reason", "updated"]
    list_display_links = ["id", "recipient"]
    inlines = [DeliveryEventInline]
    list_filter = ["status", "provider", "created"]
    search_fields = ["recipient__email"]
    search_help_text = "A whole address finds its deliveries at once; part of one (a domain) searches every address."
    list_select_related = ["recipient"]
    raw_id_fields = ["sent_email", "recipient"]
    # Newest first by id: ids grow with time, and the primary key's index serves the sort.
    ordering = ["-id"]
    show_full_result_count = False
    actions = ["requeue_failed"]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Delivery], search_term: str
    ) -> tuple[QuerySet[Delivery], bool]:
        return delivery_search(queryset=queryset, term=search_term), False

    @admin.display(description="Email", ordering="sent_email_id")
    def email_link(self, delivery: Delivery) -> str:
        url = reverse("admin:emails_sentemail_change", args=[delivery.sent_email_id])
        return format_html('<a href="{}">#{}</a>', url, delivery.sent_email_id)

    @admin.display(description="Reason")
    def short_reason(self, delivery: Delivery) -> str:
        if len(delivery.reason) <= REASON_LIST_CHARS:
            return delivery.reason
        return format_html(
            '<span title="{}">{}</span>', delivery.reason, Truncator(delivery.reason).chars(REASON_LIST_CHARS)
        )

    @admin.action(description="Requeue the selected failed recipients", permissions=["requeue"])
    def requeue_failed(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        requeue(self, request, queryset.values_list("pk", flat=True))


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Sends not yet confirmed by the broker. Rows that stay here mean the broker is unreachable."""

    list_display = ["id", "sent_email", "lane", "created", "available_at", "attempts", "last_error"]
    raw_id_fields = ["sent_email"]
    ordering = ["available_at", "id"]
