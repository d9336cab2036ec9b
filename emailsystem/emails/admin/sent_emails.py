"""The sent-email log: search by recipient, each email's timeline, its HTML body, and requeueing its failures."""

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import URLPattern, path, reverse

from emailsystem.emails.admin.attachments import AttachmentInline
from emailsystem.emails.admin.common import ReadOnlyAdminMixin, RequeueAdminMixin, requeue
from emailsystem.emails.models import Delivery, SentEmail
from emailsystem.emails.selectors import deliveries_failed, sent_email_search, sent_email_timeline

# The HTML body is shown in an iframe with `sandbox` (no scripts, forms, popups or same-origin
# access) and this policy first in its document, so viewing an email loads nothing from
# elsewhere: no tracking pixel reports an open, no remote style or font is fetched.
PREVIEW_POLICY = (
    '<meta http-equiv="Content-Security-Policy" '
    "content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:\">"
)


def html_preview_document(html_body: str) -> str:
    """The iframe's srcdoc for an HTML body (the template escapes it into the attribute)."""
    return PREVIEW_POLICY + html_body


class DeliveryInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Delivery
    fields = ("recipient", "status", "attempts", "reason", "sent_at", "delivered_at", "updated", "provider")
    readonly_fields = fields
    can_delete = False
    extra = 0
    show_change_link = True

    def get_queryset(self, request: HttpRequest) -> QuerySet[Delivery]:
        return super().get_queryset(request).select_related("recipient")


@admin.register(SentEmail)
class SentEmailAdmin(RequeueAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    # Fits a 1280-pixel screen beside the filters; the template's name is on each email's page.
    list_display = ["id", "subject", "sender", "status", "recipient_total", "created"]
    list_filter = ["status", "created", ("sender", admin.RelatedOnlyFieldListFilter)]
    # For the search box; get_search_results does the matching (sent_email_search).
    search_fields = ["subject", "sender__email"]
    search_help_text = (
        "A recipient's whole address lists every email sent to it. Part of an address (a name, a domain), "
        "a subject, a sender's address or an email's number search more widely."
    )
    date_hierarchy = "created"
    list_select_related = ["sender"]
    inlines = [DeliveryInline, AttachmentInline]
    show_full_result_count = False  # a COUNT(*) over the whole log on every page costs more than it tells
    actions = ["requeue_failed"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "subject",
                    "status",
                    "send_at",
                    "sender",
                    "from_email",
                    "reply_to",
                    "recipient_count",
                    "created",
                    "updated",
                ]
            },
        ),
        ("Content", {"fields": ["template", "template_name", "context", "body"]}),
        ("Labels", {"fields": ["tags", "metadata", "sandbox", "unsubscribe"]}),
    ]

    @admin.display(description="Recipients", ordering="recipient_count")
    def recipient_total(self, email: SentEmail) -> int:
        return email.recipient_count

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[SentEmail], search_term: str
    ) -> tuple[QuerySet[SentEmail], bool]:
        return sent_email_search(queryset=queryset, term=search_term), False

    def get_urls(self) -> list[URLPattern]:
        requeue_url = path(
            "<path:object_id>/requeue/",
            self.admin_site.admin_view(self.requeue_view),
            name="emails_sentemail_requeue",
        )
        return [requeue_url, *super().get_urls()]

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: SentEmail | None = None,
    ) -> HttpResponse:
        if obj is not None:
            context.update(
                timeline=sent_email_timeline(sent_email=obj),
                html_preview=html_preview_document(obj.html_body) if obj.html_body else "",
                failed_count=deliveries_failed(email_ids=[obj.pk]).count(),
                can_requeue=self.has_requeue_permission(request),
                requeue_url=reverse("admin:emails_sentemail_requeue", args=[obj.pk]),
            )
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    def requeue_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """POST from the email's page: requeue its failed recipients, then back to the page with a message."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        email = self.get_object(request, unquote(object_id))
        if email is None or not self.has_view_permission(request, email):
            raise Http404("No such sent email.")
        if not self.has_requeue_permission(request):
            raise PermissionDenied
        requeue(self, request, deliveries_failed(email_ids=[email.pk]).values_list("pk", flat=True))
        return HttpResponseRedirect(reverse("admin:emails_sentemail_change", args=[email.pk]))

    @admin.action(description="Requeue the failed recipients of the selected emails", permissions=["requeue"])
    def requeue_failed(self, request: HttpRequest, queryset: QuerySet[SentEmail]) -> None:
        requeue(self, request, deliveries_failed(email_ids=queryset).values_list("pk", flat=True))
