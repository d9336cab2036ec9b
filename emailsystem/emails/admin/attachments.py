"""A sent email's attachments on its admin page: name, type, size and disposition, never the content."""

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from emailsystem.emails.admin.common import ReadOnlyAdminMixin
from emailsystem.emails.models import Attachment


class AttachmentInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Attachment
    fields = ("filename", "type", "size", "disposition", "content_id")
    readonly_fields = fields
    can_delete = False
    extra = 0

    def get_queryset(self, request: HttpRequest) -> QuerySet[Attachment]:
        return super().get_queryset(request).defer("content")
