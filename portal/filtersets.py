from __future__ import annotations

import django_filters
from django.contrib.contenttypes.models import ContentType

from portal.models import ActorKind, ApiToken, AuditAction, AuditEntry
from portal.widgets import BootstrapForm


class AuditEntryFilterSet(django_filters.FilterSet):
    actor = django_filters.CharFilter(field_name="actor_label", lookup_expr="icontains")
    actor_kind = django_filters.MultipleChoiceFilter(choices=ActorKind.choices)
    action = django_filters.MultipleChoiceFilter(choices=AuditAction.choices)
    object_type = django_filters.ModelChoiceFilter(
        queryset=ContentType.objects.filter(app_label__in=["portal", "cardmgmt", "sync", "auth"])
    )
    object_id = django_filters.CharFilter()
    request_id = django_filters.CharFilter()
    since = django_filters.IsoDateTimeFilter(field_name="time", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="time", lookup_expr="lt")

    class Meta:
        model = AuditEntry
        form = BootstrapForm
        fields = [
            "actor",
            "actor_kind",
            "action",
            "object_type",
            "object_id",
            "request_id",
            "since",
            "until",
        ]


class ApiTokenFilterSet(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = ApiToken
        form = BootstrapForm
        fields = ["name", "write_enabled"]
