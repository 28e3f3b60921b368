"""Tables of the inventory lists. Only indexed columns are sortable, so sorting a
million-row list stays an index scan."""

from __future__ import annotations

import django_tables2 as tables

from cardmgmt.models import (
    AppletVersion,
    Card,
    CardProfile,
    ImportJob,
    Installation,
    OtaJob,
    SmscLink,
    Subscriber,
)


class SubscriberTable(tables.Table):
    msisdn = tables.Column(linkify=True, verbose_name="MSISDN")
    status = tables.Column(orderable=False)
    card = tables.Column(linkify=True, verbose_name="ICCID", orderable=False)
    imsi = tables.Column(accessor="card__imsi", verbose_name="IMSI", orderable=False)
    profile = tables.Column(
        accessor="card__profile__name", verbose_name="Card profile", orderable=False
    )
    created = tables.DateTimeColumn(format="Y-m-d H:i")

    class Meta:
        model = Subscriber
        fields = ("msisdn", "status", "card", "imsi", "profile", "created")
        attrs = {"class": "table table-sm table-hover"}


class CardTable(tables.Table):
    iccid = tables.Column(linkify=True, verbose_name="ICCID", orderable=False)
    imsi = tables.Column(verbose_name="IMSI", orderable=False)
    profile = tables.Column(linkify=True, orderable=False)
    status = tables.Column(orderable=False)
    subscriber = tables.Column(linkify=True, orderable=False, verbose_name="Subscriber")

    class Meta:
        model = Card
        fields = ("iccid", "imsi", "profile", "status", "subscriber")
        attrs = {"class": "table table-sm table-hover"}


class CardProfileTable(tables.Table):
    name = tables.Column(linkify=True)

    class Meta:
        model = CardProfile
        fields = ("name", "vendor", "counter_mode", "por_mode", "cmac_length", "max_load_block")
        attrs = {"class": "table table-sm table-hover"}


class ImportJobTable(tables.Table):
    original_name = tables.Column(linkify=True, verbose_name="File")

    class Meta:
        model = ImportJob
        fields = (
            "original_name",
            "kind",
            "status",
            "total_rows",
            "created_count",
            "unchanged_count",
            "error_count",
            "requested_by",
            "created",
        )
        attrs = {"class": "table table-sm table-hover"}


class AppletVersionTable(tables.Table):
    version = tables.Column(linkify=True)
    applet = tables.Column(linkify=True)

    class Meta:
        model = AppletVersion
        fields = (
            "applet",
            "version",
            "package_aid",
            "package_version",
            "load_file_size",
            "toolkit_tar",
            "created",
        )
        attrs = {"class": "table table-sm table-hover"}


class OtaJobTable(tables.Table):
    id = tables.Column(linkify=True, verbose_name="Job")
    card = tables.Column(linkify=True, orderable=False)

    class Meta:
        model = OtaJob
        fields = (
            "id",
            "operation",
            "card",
            "applet_version",
            "state",
            "result",
            "requested_by",
            "created",
        )
        attrs = {"class": "table table-sm table-hover"}


class InstallationTable(tables.Table):
    card = tables.Column(linkify=True, orderable=False)

    class Meta:
        model = Installation
        fields = ("card", "applet_version", "state", "confirmed_by", "updated")
        attrs = {"class": "table table-sm table-hover"}


class SmscLinkTable(tables.Table):
    name = tables.Column(linkify=True)

    class Meta:
        model = SmscLink
        fields = (
            "name",
            "host",
            "port",
            "system_id",
            "source_addr",
            "tps",
            "window",
            "enabled",
            "status",
        )
        attrs = {"class": "table table-sm table-hover"}
