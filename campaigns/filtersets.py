"""One FilterSet per list, shared by the UI tables and the API lists."""

from __future__ import annotations

import django_filters

from campaigns.choices import CampaignAction, CampaignState, RunState, TargetState
from campaigns.models import Campaign, CampaignRun, CampaignTarget
from portal.widgets import BootstrapForm


class CampaignFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(field_name="name", lookup_expr="icontains", label="Name")
    state = django_filters.MultipleChoiceFilter(choices=CampaignState.choices)
    action = django_filters.MultipleChoiceFilter(choices=CampaignAction.choices)

    class Meta:
        model = Campaign
        form = BootstrapForm
        fields = ["q", "state", "action"]


class CampaignRunFilterSet(django_filters.FilterSet):
    state = django_filters.MultipleChoiceFilter(choices=RunState.choices)

    class Meta:
        model = CampaignRun
        form = BootstrapForm
        fields = ["campaign", "state"]


class CampaignTargetFilterSet(django_filters.FilterSet):
    state = django_filters.MultipleChoiceFilter(choices=TargetState.choices)
    msisdn = django_filters.CharFilter(field_name="msisdn", lookup_expr="startswith")
    reason = django_filters.CharFilter(field_name="reason", lookup_expr="icontains")

    class Meta:
        model = CampaignTarget
        form = BootstrapForm
        fields = ["state", "msisdn", "reason"]
