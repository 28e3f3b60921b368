"""API permissions: the user's model permissions, with read requiring `view`, and
read-only tokens refused for anything that writes."""

from __future__ import annotations

from rest_framework import permissions

from portal.models import ApiToken


class PortalModelPermissions(permissions.DjangoModelPermissions):
    perms_map = {
        **permissions.DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
    }

    def has_permission(self, request, view) -> bool:  # type: ignore[no-untyped-def]
        if not token_allows(request):
            self.message = "This API token is read-only"
            return False
        required = getattr(view, "required_permission", None)
        if required and request.method not in permissions.SAFE_METHODS:
            return bool(
                request.user and request.user.is_authenticated and request.user.has_perm(required)
            )
        return super().has_permission(request, view)


def token_allows(request) -> bool:  # type: ignore[no-untyped-def]
    auth = getattr(request, "auth", None)
    return not (
        isinstance(auth, ApiToken)
        and not auth.write_enabled
        and request.method not in permissions.SAFE_METHODS
    )


class ActionPermission(permissions.BasePermission):
    """For API actions that are not model CRUD: the view names one permission."""

    def has_permission(self, request, view) -> bool:  # type: ignore[no-untyped-def]
        if not (request.user and request.user.is_authenticated):
            return False
        if not token_allows(request):
            self.message = "This API token is read-only"
            return False
        return request.user.has_perm(view.required_permission)
