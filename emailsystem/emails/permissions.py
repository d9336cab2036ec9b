from rest_framework.permissions import SAFE_METHODS, BasePermission, DjangoModelPermissions
from rest_framework.request import Request
from rest_framework.views import APIView


class StaffModelPermissionsOrReadOnly(DjangoModelPermissions):
    """Anyone reads; a write needs what the admin needs for it: staff status and the model's
    permission for the action (add for POST, change for PUT and PATCH, delete for DELETE).

    Superusers hold every permission. A staff member without the permission gets 403 here, as
    the admin refuses them the same change.
    """

    def has_permission(self, request: Request, view: APIView) -> bool:
        if request.method in SAFE_METHODS:
            return True
        user = request.user
        return bool(user and user.is_authenticated and user.is_staff and super().has_permission(request, view))


class TemplateAuthor(BasePermission):
    """Staff who may write templates: they hold the template add or change permission."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(
            user
            and user.is_authenticated
            and user.is_staff
            and (user.has_perm("emails.add_emailtemplate") or user.has_perm("emails.change_emailtemplate"))
        )
