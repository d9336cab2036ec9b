"""Email templates: the one model admins write here."""

from django.contrib import admin

from emailsystem.emails.models import EmailTemplate


@admin.register(EmailTemplate)
class EmailTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "subject", "modified", "created"]
    search_fields = ["name", "subject", "body"]
    readonly_fields = ["created", "modified"]
