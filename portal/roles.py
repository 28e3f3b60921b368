"""Roles are groups with model permissions, kept in code and applied after every migrate.

- administrator: everything, including people and tokens of others.
- operator: reads everything but the audit log; manages inventory; runs OTA operations and
  campaigns.
- support: reads inventory; edits single subscribers and acts on them one at a time.
- auditor: reads everything, including the audit log; changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import Group, Permission

PROJECT_APPS = ("portal", "cardmgmt", "sync", "django_celery_beat")
ROLE_NAMES = ("administrator", "operator", "support", "auditor")

# Actions beyond the model defaults, declared on the models' Meta.permissions.
OPERATOR_ACTIONS = {"cardmgmt.run_ota_operation", "cardmgmt.run_campaign"}
SUPPORT_ACTIONS = {"cardmgmt.operate_single_card", "cardmgmt.change_subscriber"}
AUDIT_PERMISSIONS = {"portal.view_auditentry"}
# Other people's API tokens: administrators and auditors only.
OTHERS_TOKENS = {"portal.view_apitoken"}
# Contents of DB2 address books: only for those given this explicitly.
PRIVATE_DATA = {"sync.view_contact_contents"}
# Inventory models the operator manages in full.
OPERATOR_MANAGED_APPS = {"cardmgmt", "sync"}


def _codes(perms: Iterable[Permission]) -> set[str]:
    return {f"{p.content_type.app_label}.{p.codename}" for p in perms}


def role_permissions() -> dict[str, set[str]]:
    perms = Permission.objects.select_related("content_type")
    project = _codes(perms.filter(content_type__app_label__in=PROJECT_APPS))
    every = _codes(perms.all())
    views = {c for c in project if c.split(".", 1)[1].startswith("view_")}
    managed = {c for c in project if c.split(".", 1)[0] in OPERATOR_MANAGED_APPS}
    return {
        "administrator": every,
        "operator": (
            (views | managed | OPERATOR_ACTIONS) - AUDIT_PERMISSIONS - PRIVATE_DATA - OTHERS_TOKENS
        )
        | {"django_celery_beat.add_periodictask", "django_celery_beat.change_periodictask"},
        "support": {c for c in views if c.startswith(("cardmgmt.", "sync."))} - PRIVATE_DATA
        | (SUPPORT_ACTIONS & project),
        "auditor": (views | AUDIT_PERMISSIONS) - PRIVATE_DATA,
    }


def sync_roles(**_: object) -> None:
    """Create the role groups and set their permissions to exactly what this module says."""
    wanted = role_permissions()
    index = {
        f"{p.content_type.app_label}.{p.codename}": p
        for p in Permission.objects.select_related("content_type")
    }
    for name in ROLE_NAMES:
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set([index[c] for c in sorted(wanted[name]) if c in index])
