"""Tables of the sync lists."""

from __future__ import annotations

import django_tables2 as tables

from sync.models import Device, HeldDelete, SyncProfile, SyncProfileTemplate, SyncSession


class SyncProfileTable(tables.Table):
    username = tables.Column(linkify=True)
    subscriber = tables.Column(linkify=True, orderable=False)
    template = tables.Column(orderable=False)
    version = tables.Column()
    card_version = tables.Column(verbose_name="On card")
    conflict_policy = tables.Column(orderable=False)

    class Meta:
        model = SyncProfile
        fields = (
            "username",
            "subscriber",
            "template",
            "version",
            "card_version",
            "conflict_policy",
        )
        attrs = {"class": "table table-sm table-hover"}


class SyncProfileTemplateTable(tables.Table):
    name = tables.Column(linkify=True)

    class Meta:
        model = SyncProfileTemplate
        fields = ("name", "segment", "server_url", "interval_minutes", "conflict_policy")
        attrs = {"class": "table table-sm table-hover"}


class SyncSessionTable(tables.Table):
    id = tables.Column(linkify=True, verbose_name="Session")
    subscriber = tables.Column(orderable=False)
    started = tables.DateTimeColumn(format="Y-m-d H:i:s")
    modes = tables.Column(accessor="mode_labels", orderable=False, verbose_name="Modes")
    counts = tables.TemplateColumn(
        "+{{ record.client_added }} ~{{ record.client_replaced }} -{{ record.client_deleted }} / "
        "+{{ record.server_added }} ~{{ record.server_replaced }} -{{ record.server_deleted }}",
        verbose_name="From handset / to handset",
        orderable=False,
    )
    conflict_count = tables.Column(verbose_name="Conflicts", orderable=False)
    status = tables.Column(orderable=False)
    duration = tables.Column(orderable=False)

    class Meta:
        model = SyncSession
        fields = ("id", "subscriber", "started", "modes", "counts", "conflict_count", "status",
                  "duration")  # fmt: skip
        attrs = {"class": "table table-sm table-hover"}


class DeviceTable(tables.Table):
    dev_id = tables.Column(linkify=True)

    class Meta:
        model = Device
        fields = ("dev_id", "imei", "subscriber", "manufacturer", "model", "current", "last_seen")
        attrs = {"class": "table table-sm table-hover"}


class HeldDeleteTable(tables.Table):
    id = tables.Column(linkify=True, verbose_name="Review")
    count = tables.Column(accessor="guids", verbose_name="Items", orderable=False)

    def render_count(self, value) -> int:  # type: ignore[no-untyped-def]
        return len(value)

    class Meta:
        model = HeldDelete
        fields = ("id", "subscriber", "datastore", "count", "store_size", "status", "created")
        attrs = {"class": "table table-sm table-hover"}
