from __future__ import annotations

from rest_framework import permissions, viewsets

from portal.api.serializers import ApiTokenSerializer, AuditEntrySerializer
from portal.filtersets import ApiTokenFilterSet, AuditEntryFilterSet
from portal.models import ApiToken, AuditEntry


class AuditEntryViewSet(viewsets.ReadOnlyModelViewSet):
    """The audit log, read-only. Secrets are redacted when entries are written."""

    queryset = AuditEntry.objects.select_related("object_type")
    serializer_class = AuditEntrySerializer
    filterset_class = AuditEntryFilterSet


class ApiTokenViewSet(viewsets.ReadOnlyModelViewSet):
    """Your own API tokens (administrators: everyone's). Keys are never returned."""

    queryset = ApiToken.objects.select_related("user")
    serializer_class = ApiTokenSerializer
    filterset_class = ApiTokenFilterSet
    permission_classes = [permissions.IsAuthenticated]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        qs = super().get_queryset()
        if self.request.user.has_perm("portal.view_apitoken"):
            return qs
        return qs.filter(user=self.request.user)
