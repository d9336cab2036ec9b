"""What the emails app's admins share: read-only records and the requeue of failed recipients."""

from collections.abc import Iterable

from django.contrib import admin, messages
from django.http import HttpRequest

from emailsystem.core.exceptions import ApplicationError
from emailsystem.emails.delivery.requeue import deliveries_requeue

# Requeueing writes, so it takes a write permission: the one to change deliveries (superusers
# have it; a staff member with view permissions only sees the records).
REQUEUE_PERMISSION = "emails.change_delivery"


class ReadOnlyAdminMixin:
    """View (and, for superusers, delete) only: records are written by the service, never by hand."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class RequeueAdminMixin:
    """`has_requeue_permission`, for actions declared with permissions=["requeue"] and the email page's button."""

    def has_requeue_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(REQUEUE_PERMISSION)


def requeue(modeladmin: admin.ModelAdmin, request: HttpRequest, delivery_ids: Iterable[int]) -> None:
    """Requeue these deliveries (the failed ones among them) and tell the admin what happened."""
    try:
        count = deliveries_requeue(delivery_ids=list(delivery_ids))
    except ApplicationError as error:
        modeladmin.message_user(request, error.message, messages.WARNING)
        return
    modeladmin.message_user(
        request, f"Requeued {count} failed recipient(s); they will be sent again.", messages.SUCCESS
    )
