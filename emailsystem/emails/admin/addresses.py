"""Recipients (every address ever sent to) and the per-user suppression lists."""

from urllib.parse import urlencode

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from emailsystem.emails.admin.common import ReadOnlyAdminMixin
from emailsystem.emails.models import Recipient, Suppression


@admin.register(Recipient)
class RecipientAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["email", "emails", "created"]
    search_fields = ["email"]
    show_full_result_count = False

    @admin.display(description="Emails")
    def emails(self, recipient: Recipient) -> str:
        """A link to the sent-email list searched for this address: every email sent to it."""
        url = reverse("admin:emails_sentemail_changelist") + "?" + urlencode({"q": recipient.email})
        return format_html('<a href="{}">Emails sent to it</a>', url)


@admin.register(Suppression)
class SuppressionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Addresses each user's sends skip. Delete an entry to let that user send to the address again."""

    list_display = ["recipient", "user", "reason", "delivery", "created"]
    list_filter = ["reason", "created"]
    search_fields = ["recipient__email", "user__email"]
    list_select_related = ["recipient", "user"]
    raw_id_fields = ["user", "recipient", "delivery"]
    show_full_result_count = False
