from __future__ import annotations

import django_tables2 as tables
from django.utils.html import format_html

from portal.models import ApiToken, AuditEntry


class AuditEntryTable(tables.Table):
    time = tables.DateTimeColumn(
        format="Y-m-d H:i:s", linkify=lambda record: record.get_absolute_url()
    )
    object_type = tables.Column(orderable=False, verbose_name="Type")
    changes = tables.Column(accessor="changed_fields", orderable=False, verbose_name="Fields")

    class Meta:
        model = AuditEntry
        fields = (
            "time",
            "actor_label",
            "action",
            "object_type",
            "object_repr",
            "changes",
            "message",
            "request_id",
        )
        attrs = {"class": "table table-sm table-hover"}

    def render_changes(self, value: list[str]) -> str:
        return ", ".join(value)


class ApiTokenTable(tables.Table):
    name = tables.Column()
    actions = tables.TemplateColumn(
        template_name="portal/token_actions.html", orderable=False, verbose_name=""
    )

    class Meta:
        model = ApiToken
        fields = (
            "name",
            "user",
            "prefix",
            "write_enabled",
            "created",
            "expires",
            "last_used",
            "revoked",
        )
        attrs = {"class": "table table-sm"}

    def render_prefix(self, value: str) -> str:
        return format_html("<code>pt_{}…</code>", value)
