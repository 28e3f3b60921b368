"""One FilterSet per list: the same class filters the UI table and the API list."""

from __future__ import annotations

import django_filters

from portal.widgets import BootstrapForm
from sync.choices import HeldDeleteStatus, SessionStatus
from sync.models import Device, HeldDelete, SyncProfile, SyncProfileTemplate, SyncSession


class SyncProfileFilterSet(django_filters.FilterSet):
    msisdn = django_filters.CharFilter(field_name="subscriber__msisdn", lookup_expr="startswith")
    outdated = django_filters.BooleanFilter(method="filter_outdated", label="Card not current")

    class Meta:
        model = SyncProfile
        form = BootstrapForm
        fields = ["msisdn", "template", "conflict_policy", "outdated"]

    def filter_outdated(self, queryset, name, value):  # type: ignore[no-untyped-def]
        from django.db.models import F, Q

        cond = Q(card_version__isnull=True) | ~Q(card_version=F("version"))
        return queryset.filter(cond) if value else queryset.exclude(cond)


class SyncProfileTemplateFilterSet(django_filters.FilterSet):
    class Meta:
        model = SyncProfileTemplate
        form = BootstrapForm
        fields = ["segment"]


class SyncSessionFilterSet(django_filters.FilterSet):
    subscriber = django_filters.NumberFilter(field_name="subscriber_id")
    status = django_filters.MultipleChoiceFilter(choices=SessionStatus.choices)

    class Meta:
        model = SyncSession
        form = BootstrapForm
        fields = ["subscriber", "status"]


class DeviceFilterSet(django_filters.FilterSet):
    subscriber = django_filters.NumberFilter(field_name="subscriber_id")
    imei = django_filters.CharFilter(lookup_expr="startswith")

    class Meta:
        model = Device
        form = BootstrapForm
        fields = ["subscriber", "imei", "current"]


class HeldDeleteFilterSet(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=HeldDeleteStatus.choices)
    subscriber = django_filters.NumberFilter(field_name="subscriber_id")

    class Meta:
        model = HeldDelete
        form = BootstrapForm
        fields = ["status", "subscriber"]
