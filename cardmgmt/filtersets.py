"""One FilterSet per list: the same class filters the UI table and the API list."""

from __future__ import annotations

import django_filters
from django.db.models import Q, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from cardmgmt.choices import (
    CardStatus,
    ImportKind,
    ImportStatus,
    InstallationState,
    OtaJobState,
    OtaOperation,
    SubscriberStatus,
)
from cardmgmt.models import (
    Applet,
    AppletVersion,
    Card,
    CardProfile,
    ImportJob,
    Installation,
    OtaJob,
    Segment,
    SmscLink,
    Subscriber,
)
from portal.widgets import BootstrapForm

SEARCH_LIMIT = 1000
SELECTIVE_PREFIX = 8  # digits from which a prefix matches few subscribers


@extend_schema_field(OpenApiTypes.STR)
class SegmentFilter(django_filters.ModelMultipleChoiceFilter):
    """Segments by name (repeatable); typed for the OpenAPI schema."""


def subscriber_search(queryset: QuerySet, value: str) -> QuerySet:
    """MSISDN, ICCID or IMSI by prefix, each through its own index."""
    value = value.strip().replace(" ", "")
    if not value:
        return queryset
    msisdn = value if value.startswith("+") else "+" + value.lstrip("0")
    cards = Card.objects.filter(Q(iccid__startswith=value) | Q(imsi__startswith=value))
    card_ids = list(cards.values_list("pk", flat=True)[:SEARCH_LIMIT])
    matching = queryset.filter(Q(msisdn__startswith=msisdn) | Q(card_id__in=card_ids))
    if len(value.lstrip("+")) < SELECTIVE_PREFIX:
        # Many matches: walking the sorted index finds a page of them at once.
        return matching
    # Few matches: find them through the prefix indexes first, then sort just those; the
    # planner would otherwise walk the whole sorted index looking for them.
    ids = list(matching.order_by().values_list("pk", flat=True)[:SEARCH_LIMIT])
    return queryset.filter(pk__in=ids)


class SubscriberFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="MSISDN, ICCID or IMSI")
    status = django_filters.MultipleChoiceFilter(
        choices=SubscriberStatus.choices, method="filter_status"
    )
    segment = SegmentFilter(
        field_name="segments__name",
        to_field_name="name",
        queryset=Segment.objects.all(),
        label="Segment",
    )
    profile = django_filters.ModelChoiceFilter(
        field_name="card__profile", queryset=CardProfile.objects.all(), label="Card profile"
    )
    has_card = django_filters.BooleanFilter(field_name="card", lookup_expr="isnull", exclude=True)

    class Meta:
        model = Subscriber
        form = BootstrapForm
        fields = ["q", "status", "segment", "profile", "has_card"]

    def search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return subscriber_search(queryset, value)

    def filter_status(self, queryset: QuerySet, name: str, value: list[str]) -> QuerySet:
        # One status as `=`: the (status, msisdn) index then also gives the sort order,
        # which PostgreSQL does not use for `IN (...)`.
        if len(value) == 1:
            return queryset.filter(status=value[0])
        return queryset.filter(status__in=value) if value else queryset


class CardFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="ICCID or IMSI")
    status = django_filters.MultipleChoiceFilter(choices=CardStatus.choices)
    profile = django_filters.ModelChoiceFilter(queryset=CardProfile.objects.all())
    assigned = django_filters.BooleanFilter(
        field_name="subscriber", lookup_expr="isnull", exclude=True
    )

    class Meta:
        model = Card
        form = BootstrapForm
        fields = ["q", "status", "profile", "assigned"]

    def search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        return queryset.filter(Q(iccid__startswith=value) | Q(imsi__startswith=value))


class CardProfileFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Name or vendor")

    class Meta:
        model = CardProfile
        form = BootstrapForm
        fields = ["q", "vendor"]

    def search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(Q(name__icontains=value) | Q(vendor__icontains=value))


class ImportJobFilterSet(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=ImportKind.choices)
    status = django_filters.MultipleChoiceFilter(choices=ImportStatus.choices)

    class Meta:
        model = ImportJob
        form = BootstrapForm
        fields = ["kind", "status"]


class AppletVersionFilterSet(django_filters.FilterSet):
    applet = django_filters.ModelChoiceFilter(queryset=Applet.objects.all())
    package_aid = django_filters.CharFilter(lookup_expr="iexact")

    class Meta:
        model = AppletVersion
        form = BootstrapForm
        fields = ["applet", "package_aid"]


class OtaJobFilterSet(django_filters.FilterSet):
    state = django_filters.MultipleChoiceFilter(choices=OtaJobState.choices)
    operation = django_filters.MultipleChoiceFilter(choices=OtaOperation.choices)
    iccid = django_filters.CharFilter(field_name="card__iccid", label="ICCID")
    msisdn = django_filters.CharFilter(field_name="card__subscriber__msisdn", label="MSISDN")

    class Meta:
        model = OtaJob
        form = BootstrapForm
        fields = ["state", "operation", "iccid", "msisdn", "applet_version"]


class InstallationFilterSet(django_filters.FilterSet):
    iccid = django_filters.CharFilter(field_name="card__iccid", label="ICCID")
    state = django_filters.MultipleChoiceFilter(choices=InstallationState.choices)

    class Meta:
        model = Installation
        form = BootstrapForm
        fields = ["iccid", "applet_version", "state"]


class SmscLinkFilterSet(django_filters.FilterSet):
    class Meta:
        model = SmscLink
        form = BootstrapForm
        fields = ["enabled"]
