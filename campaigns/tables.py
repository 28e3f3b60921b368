"""Tables of the campaign lists (only indexed columns sortable)."""

from __future__ import annotations

import django_tables2 as tables

from campaigns.models import Campaign, CampaignRun, CampaignTarget


class CampaignTable(tables.Table):
    name = tables.Column(linkify=True)
    action = tables.Column(orderable=False)
    state = tables.Column(orderable=False)
    schedule_kind = tables.Column(verbose_name="Schedule", orderable=False)
    created = tables.DateTimeColumn(format="Y-m-d H:i")

    class Meta:
        model = Campaign
        fields = ("name", "action", "state", "schedule_kind", "created_by", "created")
        attrs = {"class": "table table-sm table-hover"}


class CampaignRunTable(tables.Table):
    number = tables.Column(linkify=True, verbose_name="Run")
    state = tables.Column(orderable=False)
    total = tables.Column(orderable=False)
    started = tables.DateTimeColumn(format="Y-m-d H:i:s")
    finished = tables.DateTimeColumn(format="Y-m-d H:i:s", orderable=False)

    class Meta:
        model = CampaignRun
        fields = ("number", "state", "total", "planned", "skipped", "started", "finished")
        attrs = {"class": "table table-sm table-hover"}


class CampaignTargetTable(tables.Table):
    msisdn = tables.Column(verbose_name="MSISDN", orderable=False)
    card = tables.Column(linkify=True, verbose_name="ICCID", orderable=False)
    state = tables.Column(orderable=False)
    job = tables.Column(linkify=True, verbose_name="OTA job", orderable=False)
    reason = tables.Column(orderable=False)
    updated = tables.DateTimeColumn(format="Y-m-d H:i:s", orderable=False)

    class Meta:
        model = CampaignTarget
        fields = ("id", "msisdn", "card", "state", "job", "reason", "updated")
        attrs = {"class": "table table-sm table-hover"}
