"""Who may read and write what: every URL of the project against every role.

`MATRIX` declares, for each URL name, which roles may GET it and which may write to it
(POST on create and edit forms and API lists; PUT, PATCH and DELETE on API details).
The expected status follows from the declaration:

- a role that may read gets 200, one that may not gets 403;
- the anonymous visitor is sent to the login page (302) on UI pages and gets 401 from the API;
- a permitted write succeeds (UI: 302 away from the form; API: 201/200/204) and writes an
  audit entry; a refused one gets 403 and writes nothing.

`test_matrix_covers_every_url` fails when a URL is added without a row here, and
`test_matrix_names_only_existing_urls` when a row outlives its URL: the table cannot drift.
Roles are those of `portal/roles.py`.
"""

from __future__ import annotations

import dataclasses
import datetime
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client
from django.urls import NoReverseMatch, URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from rest_framework.test import APIClient

from cardmgmt import services as inventory
from cardmgmt.models import (
    Card,
    CardProfile,
    ImportJob,
    Installation,
    OtaJob,
    SmscLink,
    Subscriber,
)
from cardmgmt.ota import build_demo_cap
from cardmgmt.validators import luhn_check_digit
from portal import services
from portal.context import Actor
from portal.models import ApiToken, AuditEntry
from tests.campaigns.role_matrix import CAMPAIGNS_MATRIX, CAMPAIGNS_WRITE_PAYLOADS
from tests.sync import role_matrix as sync_matrix
from tests.sync.role_matrix import SYNC_MATRIX

ACTOR = Actor.command("tests")

ANON = "anonymous"
ADMIN = "administrator"
OPERATOR = "operator"
SUPPORT = "support"
AUDITOR = "auditor"
ROLES = (ADMIN, OPERATOR, SUPPORT, AUDITOR)
EVERYONE = frozenset(ROLES)
MANAGERS = frozenset({ADMIN, OPERATOR})  # manage the inventory
AUDIT_READERS = frozenset({ADMIN, AUDITOR})
NOBODY: frozenset[str] = frozenset()

UI, API = "ui", "api"


@dataclass(frozen=True)
class Rule:
    kind: str  # UI (session, login redirect) or API (token, 401)
    read: frozenset[str]  # roles whose GET gives 200; other roles get 403
    write: dict[str, frozenset[str]] = field(default_factory=dict)  # method -> permitted roles
    obj: str | None = None  # the test object whose pk the URL takes
    public: bool = False  # anonymous GET gives 200
    get_status: dict[str, int] = field(default_factory=dict)  # exceptions to the rule above
    writes_tested_in: str = ""  # writes covered by another module (login, logout...)
    write_status: int | None = None  # success status when not the usual one for the method
    dry_run: bool = False  # a POST that only computes (a preview): success writes no audit


MATRIX: dict[str, Rule] = {
    # --- portal UI ---
    "dashboard": Rule(UI, EVERYONE),
    "search": Rule(UI, EVERYONE),
    "healthz": Rule(UI, EVERYONE, public=True),
    # A logged-in user is sent on to the dashboard.
    "login": Rule(
        UI,
        NOBODY,
        public=True,
        get_status=dict.fromkeys(ROLES, 302),
        writes_tested_in="tests/portal/test_ui.py",
    ),
    # Logging out is POST only (Django 5).
    "logout": Rule(
        UI,
        NOBODY,
        get_status=dict.fromkeys((ANON, *ROLES), 405),
        writes_tested_in="tests/portal/test_ui.py",
    ),
    "password_change": Rule(UI, EVERYONE, writes_tested_in="tests/portal/test_ui.py"),
    "password_change_done": Rule(UI, EVERYONE),
    "audit_list": Rule(UI, AUDIT_READERS),
    "audit_detail": Rule(UI, AUDIT_READERS, obj="audit"),
    "token_list": Rule(UI, EVERYONE),
    # POST only; everyone may create tokens for themselves.
    "token_add": Rule(UI, NOBODY, write={"post": EVERYONE}, get_status=dict.fromkeys(ROLES, 405)),
    # The token belongs to another user: only administrators (change_apitoken) may revoke it.
    "token_revoke": Rule(
        UI,
        NOBODY,
        write={"post": frozenset({ADMIN})},
        obj="token",
        get_status=dict.fromkeys(ROLES, 405),
    ),
    # --- inventory UI ---
    "cardmgmt:subscriber_list": Rule(UI, EVERYONE),
    "cardmgmt:subscriber_add": Rule(UI, MANAGERS, write={"post": MANAGERS}),
    "cardmgmt:subscriber_detail": Rule(UI, EVERYONE, obj="subscriber"),
    "cardmgmt:subscriber_edit": Rule(
        UI, MANAGERS | {SUPPORT}, write={"post": MANAGERS | {SUPPORT}}, obj="subscriber"
    ),
    "cardmgmt:card_list": Rule(UI, EVERYONE),
    "cardmgmt:card_add": Rule(UI, MANAGERS, write={"post": MANAGERS}),
    "cardmgmt:card_detail": Rule(UI, EVERYONE, obj="card"),
    "cardmgmt:card_edit": Rule(UI, MANAGERS, write={"post": MANAGERS}, obj="card"),
    "cardmgmt:card_keyset": Rule(UI, MANAGERS, write={"post": MANAGERS}, obj="card"),
    "cardmgmt:cardprofile_list": Rule(UI, EVERYONE),
    "cardmgmt:cardprofile_add": Rule(UI, MANAGERS, write={"post": MANAGERS}),
    "cardmgmt:cardprofile_detail": Rule(UI, EVERYONE, obj="profile"),
    "cardmgmt:cardprofile_edit": Rule(UI, MANAGERS, write={"post": MANAGERS}, obj="profile"),
    "cardmgmt:importjob_list": Rule(UI, EVERYONE),
    "cardmgmt:import_add": Rule(UI, MANAGERS, write={"post": MANAGERS}),
    "cardmgmt:importjob_detail": Rule(UI, EVERYONE, obj="job"),
    # --- applet catalog and OTA UI ---
    "cardmgmt:appletversion_list": Rule(UI, EVERYONE),
    "cardmgmt:appletversion_add": Rule(UI, MANAGERS, write={"post": MANAGERS}),
    "cardmgmt:applet_detail": Rule(UI, EVERYONE, obj="applet"),
    "cardmgmt:appletversion_detail": Rule(UI, EVERYONE, obj="version"),
    "cardmgmt:appletversion_edit": Rule(UI, MANAGERS, write={"post": MANAGERS}, obj="version"),
    "cardmgmt:installation_list": Rule(UI, EVERYONE),
    # One card: operate_single_card (support) or run_ota_operation (operator).
    "cardmgmt:card_operate": Rule(
        UI, MANAGERS | {SUPPORT}, write={"post": MANAGERS | {SUPPORT}}, obj="card"
    ),
    "cardmgmt:ota_selection": Rule(UI, MANAGERS, write={"post": MANAGERS}),
    "cardmgmt:otajob_list": Rule(UI, EVERYONE),
    "cardmgmt:otajob_detail": Rule(UI, EVERYONE, obj="ota_job"),
    # POST only; who may operate on a card may cancel its jobs (as in the API).
    "cardmgmt:otajob_cancel": Rule(
        UI,
        NOBODY,
        write={"post": MANAGERS | {SUPPORT}},
        obj="ota_job",
        get_status={ADMIN: 405, OPERATOR: 405, SUPPORT: 405},
    ),
    "cardmgmt:smsclink_list": Rule(UI, EVERYONE),
    "cardmgmt:smsclink_add": Rule(UI, MANAGERS, write={"post": MANAGERS}),
    "cardmgmt:smsclink_detail": Rule(UI, EVERYONE, obj="smsc_link"),
    "cardmgmt:smsclink_edit": Rule(UI, MANAGERS, write={"post": MANAGERS}, obj="smsc_link"),
    # --- API ---
    "api:auditentry-list": Rule(API, AUDIT_READERS),
    "api:auditentry-detail": Rule(API, AUDIT_READERS, obj="audit"),
    "api:apitoken-list": Rule(API, EVERYONE),
    # Only administrators and auditors hold portal.view_apitoken: for the others another
    # user's token does not exist.
    "api:apitoken-detail": Rule(
        API, EVERYONE, obj="token", get_status={SUPPORT: 404, OPERATOR: 404}
    ),
    "api:subscriber-list": Rule(API, EVERYONE, write={"post": MANAGERS}),
    "api:subscriber-detail": Rule(
        API,
        EVERYONE,
        obj="subscriber",
        write={"put": MANAGERS | {SUPPORT}, "patch": MANAGERS | {SUPPORT}, "delete": MANAGERS},
    ),
    "api:card-list": Rule(API, EVERYONE, write={"post": MANAGERS}),
    # Cards are retired, never deleted: no DELETE (see test_card_cannot_be_deleted).
    "api:card-detail": Rule(API, EVERYONE, obj="card", write={"put": MANAGERS, "patch": MANAGERS}),
    "api:cardprofile-list": Rule(API, EVERYONE, write={"post": MANAGERS}),
    "api:cardprofile-detail": Rule(
        API,
        EVERYONE,
        obj="spare_profile",
        write={"put": MANAGERS, "patch": MANAGERS, "delete": MANAGERS},
    ),
    "api:importjob-list": Rule(API, EVERYONE, write={"post": MANAGERS}),
    "api:importjob-detail": Rule(API, EVERYONE, obj="job"),
    "api:appletversion-list": Rule(API, EVERYONE, write={"post": MANAGERS}),
    # PUT is a partial update of the default install parameters, like PATCH.
    "api:appletversion-detail": Rule(
        API, EVERYONE, obj="version", write={"put": MANAGERS, "patch": MANAGERS}
    ),
    "api:installation-list": Rule(API, EVERYONE),
    "api:installation-detail": Rule(API, EVERYONE, obj="installation"),
    "api:otajob-list": Rule(API, EVERYONE, write={"post": MANAGERS | {SUPPORT}}),
    "api:otajob-detail": Rule(API, EVERYONE, obj="ota_job"),
    # Who may operate on a card may cancel its jobs, in the UI as in the API.
    "api:otajob-cancel": Rule(
        API,
        NOBODY,
        obj="ota_job",
        write={"post": MANAGERS | {SUPPORT}},
        get_status=dict.fromkeys(ROLES, 405),
        write_status=200,
    ),
    "api:smsclink-list": Rule(API, EVERYONE, write={"post": MANAGERS}),
    "api:smsclink-detail": Rule(
        API, EVERYONE, obj="smsc_link", write={"put": MANAGERS, "patch": MANAGERS}
    ),
    # The schema and its viewer are public (drf-spectacular SERVE_PUBLIC / AllowAny).
    "api:schema": Rule(API, EVERYONE, public=True),
    "api:docs": Rule(API, EVERYONE, public=True),
}

WRITE_SUCCESS = {
    (UI, "post"): 302,
    (API, "post"): 201,
    (API, "put"): 200,
    (API, "patch"): 200,
    (API, "delete"): 204,
}


# --- the URLs of the project ---------------------------------------------------------------


def _walk(resolver: URLResolver, namespace: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            inner = (*namespace, entry.namespace) if entry.namespace else namespace
            yield from _walk(entry, inner)
        elif isinstance(entry, URLPattern):
            # An unnamed pattern cannot be covered by name: it shows up as uncovered.
            name = ":".join((*namespace, entry.name or f"<unnamed {entry.pattern}>"))
            yield name, entry


def project_urls() -> dict[str, list[URLPattern]]:
    """Fully qualified URL name -> its patterns (format-suffix variants share a name)."""
    found: dict[str, list[URLPattern]] = {}
    for name, pattern in _walk(get_resolver()):
        if name.startswith("admin:"):
            continue
        found.setdefault(name, []).append(pattern)
    return found


def supported_writes(pattern: URLPattern) -> set[str] | None:
    """The write methods a class-based view answers; None when it cannot be told (functions)."""
    callback = pattern.callback
    actions = getattr(callback, "actions", None)
    view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if view_class is None:
        return None
    allowed = set(view_class.http_method_names) & {"post", "put", "patch", "delete"}
    if actions is not None:  # a DRF viewset route
        return allowed & set(actions)
    return {m for m in allowed if hasattr(view_class, m)}


def test_matrix_covers_every_url() -> None:
    missing = sorted(set(project_urls()) - set(MATRIX))
    assert not missing, f"URLs without a row in the role matrix: {missing}"


def test_matrix_names_only_existing_urls() -> None:
    stale = sorted(set(MATRIX) - set(project_urls()))
    assert not stale, f"Role matrix rows for URLs that no longer exist: {stale}"


def test_matrix_declares_every_write_method() -> None:
    """A view that accepts a write must have it in the matrix (or say where it is tested)."""
    problems = []
    for name, patterns in project_urls().items():
        rule = MATRIX.get(name)
        if rule is None:
            continue  # reported by test_matrix_covers_every_url
        for pattern in patterns:
            methods = supported_writes(pattern)
            if methods is None:
                continue
            declared = set(rule.write)
            if rule.writes_tested_in:
                declared |= methods
            if methods != declared:
                problems.append(
                    f"{name}: view accepts {sorted(methods)}, matrix declares {sorted(declared)}"
                )
    assert not problems, "\n".join(problems)


def test_meta_tests_detect_drift(monkeypatch) -> None:
    """The two coverage meta-tests really fail on a missing and on a stale row."""
    trimmed = {k: v for k, v in MATRIX.items() if k != "cardmgmt:card_list"}
    monkeypatch.setattr(sys.modules[__name__], "MATRIX", trimmed)
    with pytest.raises(AssertionError, match="cardmgmt:card_list"):
        test_matrix_covers_every_url()
    stale = {**MATRIX, "cardmgmt:gone": Rule(UI, EVERYONE)}
    monkeypatch.setattr(sys.modules[__name__], "MATRIX", stale)
    with pytest.raises(AssertionError, match="cardmgmt:gone"):
        test_matrix_names_only_existing_urls()


# --- test objects --------------------------------------------------------------------------


def _iccid(serial: int) -> str:
    body = f"89490010000{serial:07d}"
    return body + str(luhn_check_digit(body))


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def objs(subscriber, card, card_profile, make_user) -> SimpleNamespace:
    owner = make_user(ADMIN, username="token-owner")
    token, _key = services.create_api_token(actor=ACTOR, user=owner, name="owner's token")
    spare_profile = inventory.create_card_profile(
        actor=ACTOR, name="Spare", vendor="Spare Inc", algorithms=["aes128"]
    )
    spare_card = inventory.create_card(
        actor=ACTOR, iccid=_iccid(900), imsi="262010000000900", profile=card_profile
    )
    job = ImportJob.objects.create(
        kind="subscribers", original_name="old.csv", requested_by="tests", status="done"
    )
    version = inventory.upload_applet_version(
        actor=ACTOR,
        applet_name="sync",
        version="1.0",
        cap_bytes=build_demo_cap(),
        cap_name="sync.cap",
    )
    installation = Installation.objects.create(
        card=card, applet_version=version, state="installed", confirmed_by="audit"
    )
    ota_job = inventory.start_ota_job(actor=ACTOR, card=card, operation="audit")
    smsc_link = inventory.save_smsc_link(
        actor=ACTOR,
        name="main",
        host="127.0.0.1",
        port=2775,
        system_id="portal",
        password="secret",
        source_addr="1234",
    )
    return SimpleNamespace(
        subscriber=subscriber,
        card=card,
        profile=card_profile,
        spare_profile=spare_profile,
        spare_card=spare_card,
        token=token,
        job=job,
        audit=AuditEntry.objects.order_by("id").first(),
        version=version,
        applet=version.applet,
        installation=installation,
        ota_job=ota_job,
        smsc_link=smsc_link,
        spare_subscriber=inventory.create_subscriber(actor=ACTOR, msisdn="+491709990077"),
        **_sync_objects(subscriber),
        **_campaign_objects(subscriber, card),
    )


def _sync_objects(subscriber) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    from sync import services as sync_services
    from sync.models import Device, HeldDelete, SyncSession

    template = sync_services.create_template(
        actor=ACTOR, name="matrix", server_url="http://testserver/syncml"
    )
    profile, _secret = sync_services.create_profile(
        actor=ACTOR, subscriber=subscriber, username="matrix-user"
    )
    contact = sync_services.save_contact(
        actor=ACTOR,
        subscriber=subscriber,
        vcard="BEGIN:VCARD\r\nVERSION:3.0\r\nN:Doe;Jo\r\nFN:Jo Doe\r\nEND:VCARD\r\n",
    )
    device = Device.objects.create(
        subscriber=subscriber, dev_id="IMEI:356938035643809", imei="356938035643809"
    )
    session = SyncSession.objects.create(
        profile=profile,
        subscriber=subscriber,
        token="matrix",
        client_session_id="1",
        client_dev_id=device.dev_id,
        syncml_version="1.2",
        encoding="xml",
        device=device,
    )
    held = HeldDelete.objects.create(
        session=session,
        subscriber=subscriber,
        datastore="contacts",
        guids=[contact.guid],
        store_size=1,
    )
    return {
        "sync_template": template,
        "sync_profile": profile,
        "sync_contact": contact,
        "sync_device": device,
        "sync_session": session,
        "sync_held": held,
    }


def _campaign_objects(subscriber, card) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    from campaigns import services as campaign_services
    from campaigns.choices import RunState, TargetState
    from campaigns.models import CampaignTarget

    def campaign(name: str):  # type: ignore[no-untyped-def]
        return campaign_services.create_campaign(actor=ACTOR, name=name, action="audit")

    running = campaign_services.start_run(actor=ACTOR, campaign=campaign("matrix running"))
    paused = campaign_services.pause_run(
        actor=ACTOR, run=campaign_services.start_run(actor=ACTOR, campaign=campaign("paused"))
    )
    finished = campaign_services.start_run(actor=ACTOR, campaign=campaign("matrix finished"))
    CampaignTarget.objects.create(
        run=finished,
        subscriber=subscriber,
        card=card,
        msisdn=subscriber.msisdn,
        state=TargetState.FAILED,
        reason="test",
    )
    type(finished).objects.filter(pk=finished.pk).update(state=RunState.DONE)
    finished.refresh_from_db()
    return {
        "campaign": campaign("matrix"),
        "campaign_idle": campaign("matrix idle"),
        "campaign_run": running,
        "campaign_run_paused": paused,
        "campaign_run_failed": finished,
    }


def _profile_form(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "vendor": "Vendor",
        "algorithms": ["aes128"],
        "ram_tar": "B00000",
        "rfm_tar": "B00010",
        "min_security_level": 18,
        "cmac_length": 8,
        "counter_mode": "higher",
        "por_mode": "sms_submit",
        "max_load_block": 240,
        "por_timeout": 120,
    }


def _cap() -> SimpleUploadedFile:
    return SimpleUploadedFile("sync.cap", build_demo_cap(), content_type="application/zip")


def _smsc_form(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "host": "127.0.0.1",
        "port": 2775,
        "system_id": "portal",
        "system_type": "",
        "source_addr": "1234",
        "tps": 50,
        "window": 8,
        "enabled": True,
    }


def _csv() -> SimpleUploadedFile:
    return SimpleUploadedFile(
        "subs.csv", b"MSISDN,STATUS\n+491709990001,active\n", content_type="text/csv"
    )


# What each write sends: valid data, so a permitted write succeeds.
PAYLOADS: dict[tuple[str, str], Callable[[SimpleNamespace], dict[str, Any]]] = {
    ("token_add", "post"): lambda o: {"name": "matrix token"},
    ("token_revoke", "post"): lambda o: {},
    ("cardmgmt:subscriber_add", "post"): lambda o: {
        "msisdn": "+491709990001",
        "status": "active",
        "segments": "",
        "iccid": "",
    },
    ("cardmgmt:subscriber_edit", "post"): lambda o: {
        "msisdn": o.subscriber.msisdn,
        "status": "suspended",
        "segments": "prepaid",
        "iccid": o.card.iccid,
    },
    ("cardmgmt:card_add", "post"): lambda o: {
        "iccid": _iccid(901),
        "imsi": "262010000000901",
        "profile": o.profile.pk,
        "status": "in_stock",
    },
    ("cardmgmt:card_edit", "post"): lambda o: {"profile": o.spare_profile.pk, "status": "active"},
    ("cardmgmt:card_keyset", "post"): lambda o: {
        "kvn": 2,
        "algorithm": "aes128",
        "kic": "11" * 16,
        "kid": "22" * 16,
        "kik": "",
    },
    ("cardmgmt:cardprofile_add", "post"): lambda o: _profile_form("Matrix profile"),
    ("cardmgmt:cardprofile_edit", "post"): lambda o: _profile_form("Renamed profile"),
    ("cardmgmt:import_add", "post"): lambda o: {"kind": "subscribers", "file": _csv()},
    ("api:subscriber-list", "post"): lambda o: {"msisdn": "+491709990002", "segments": ["a"]},
    ("api:subscriber-detail", "put"): lambda o: {"msisdn": "+491709990003", "status": "active"},
    ("api:subscriber-detail", "patch"): lambda o: {"status": "suspended"},
    ("api:subscriber-detail", "delete"): lambda o: {},
    ("api:card-list", "post"): lambda o: {
        "iccid": _iccid(902),
        "imsi": "262010000000902",
        "profile": o.profile.name,
    },
    ("api:card-detail", "put"): lambda o: {
        "iccid": o.card.iccid,
        "imsi": o.card.imsi,
        "profile": o.spare_profile.name,
        "status": "suspended",
    },
    ("api:card-detail", "patch"): lambda o: {"status": "suspended"},
    ("api:cardprofile-list", "post"): lambda o: _profile_form("API profile"),
    ("api:cardprofile-detail", "put"): lambda o: _profile_form("Renamed by API"),
    ("api:cardprofile-detail", "patch"): lambda o: {"vendor": "Patched"},
    ("api:cardprofile-detail", "delete"): lambda o: {},
    ("api:importjob-list", "post"): lambda o: {"kind": "subscribers", "file": _csv()},
    ("cardmgmt:appletversion_add", "post"): lambda o: {
        "applet": "sync",
        "version": "2.0",
        "description": "",
        "cap_file": _cap(),
    },
    ("cardmgmt:appletversion_edit", "post"): lambda o: {
        "instance_aid": o.version.instance_aid,
        "privileges": "00",
        "toolkit_tar": o.version.toolkit_tar,
        "priority": 1,
        "max_timers": 0,
        "menu_entries": "",
        "max_menu_text_length": 16,
        "max_channels": 0,
        "min_security_level": 0,
    },
    ("cardmgmt:card_operate", "post"): lambda o: {"operation": "audit"},
    ("cardmgmt:ota_selection", "post"): lambda o: {"operation": "audit", "iccids": o.card.iccid},
    ("cardmgmt:otajob_cancel", "post"): lambda o: {},
    ("cardmgmt:smsclink_add", "post"): lambda o: {**_smsc_form("second"), "password": "pw"},
    ("cardmgmt:smsclink_edit", "post"): lambda o: _smsc_form("main"),
    ("api:appletversion-list", "post"): lambda o: {
        "applet": "sync",
        "version": "3.0",
        "cap_file": _cap(),
    },
    ("api:appletversion-detail", "put"): lambda o: {"max_timers": 1},
    ("api:appletversion-detail", "patch"): lambda o: {"priority": 2},
    ("api:otajob-list", "post"): lambda o: {"iccid": o.card.iccid, "operation": "audit"},
    ("api:otajob-cancel", "post"): lambda o: {},
    ("api:smsclink-list", "post"): lambda o: {**_smsc_form("third"), "password": "pw"},
    ("api:smsclink-detail", "put"): lambda o: _smsc_form("main"),
    ("api:smsclink-detail", "patch"): lambda o: {"tps": 10},
}


# The sync and campaign apps declare their rows next to their tests; they are one table here.
MATRIX.update({name: Rule(**spec) for name, spec in {**SYNC_MATRIX, **CAMPAIGNS_MATRIX}.items()})
# Actions on an existing object answer 200 (nothing is created)...
for _name in (
    "api:syncprofile-reset-credentials",
    "api:helddelete-approve",
    "api:helddelete-reject",
):
    MATRIX[_name] = dataclasses.replace(MATRIX[_name], write_status=200)
# ...and a campaign's dry run changes nothing at all.
MATRIX["api:campaign-preview"] = dataclasses.replace(
    MATRIX["api:campaign-preview"], write_status=200, dry_run=True
)
PAYLOADS.update(CAMPAIGNS_WRITE_PAYLOADS)
PAYLOADS.update(getattr(sync_matrix, "SYNC_WRITE_PAYLOADS", {}))
PAYLOADS.update(
    {
        ("api:syncprofiletemplate-list", "post"): lambda o: {
            "name": "matrix api",
            "server_url": "https://sync.operator.example/syncml",
        },
        ("api:syncprofiletemplate-detail", "put"): lambda o: {
            "name": "matrix renamed",
            "server_url": "https://sync.operator.example/syncml",
        },
        ("api:syncprofiletemplate-detail", "patch"): lambda o: {"interval_minutes": 60},
        ("api:syncprofile-list", "post"): lambda o: {
            "subscriber": o.spare_subscriber.msisdn,
            "username": "matrix-api",
        },
        ("api:syncprofile-detail", "put"): lambda o: {
            "subscriber": o.subscriber.msisdn,
            "conflict_policy": "server_wins",
        },
        ("api:syncprofile-detail", "patch"): lambda o: {"conflict_policy": "client_wins"},
        ("api:syncprofile-reset-credentials", "post"): lambda o: {},
        ("api:helddelete-approve", "post"): lambda o: {},
        ("api:helddelete-reject", "post"): lambda o: {},
        ("sync:helddelete_decide", "post"): lambda o: {"decision": "reject"},
    }
)


def test_every_declared_write_has_a_payload() -> None:
    declared = {(name, method) for name, rule in MATRIX.items() for method in rule.write}
    assert declared == set(PAYLOADS)


# --- requests ------------------------------------------------------------------------------


def _url(name: str, objs: SimpleNamespace) -> str:
    rule = MATRIX[name]
    if not rule.obj:
        return reverse(name)
    pk = getattr(objs, rule.obj).pk
    try:
        return reverse(name, kwargs={"pk": pk})
    except NoReverseMatch:  # nested routes name their parent: /campaign-runs/<run_pk>/targets/
        return reverse(name, kwargs={"run_pk": pk})


@pytest.fixture
def clients(make_user, api_client_for) -> Callable[[str, str], Client]:
    """One client per (role, kind): a session for the UI, a write-enabled token for the API."""
    made: dict[tuple[str, str], Client] = {}

    def client(role: str, kind: str) -> Client:
        if (role, kind) not in made:
            if role == ANON:
                made[role, kind] = APIClient() if kind == API else Client()
            elif kind == API:
                made[role, kind] = api_client_for(role)  # creates "<role>-user" if needed
            else:
                user = get_user_model().objects.filter(username=f"{role}-user").first()
                made[role, kind] = Client()
                made[role, kind].force_login(user or make_user(role))
        return made[role, kind]

    return client


def _send(client: Client, kind: str, method: str, url: str, data: dict[str, Any]):  # type: ignore[no-untyped-def]
    if kind == UI or any(isinstance(v, SimpleUploadedFile) for v in data.values()):
        return getattr(client, method)(url, data)  # form encoded / multipart
    return getattr(client, method)(url, data, format="json")


def _outcome(response) -> str:  # type: ignore[no-untyped-def]
    """The status code, and for a redirect whether it goes to the login page."""
    if response.status_code == 302 and response["Location"].startswith(reverse("login") + "?"):
        return "302 to login"
    return str(response.status_code)


def expected_get(rule: Rule, role: str) -> str:
    if role in rule.get_status:
        return str(rule.get_status[role])
    if role == ANON:
        return "200" if rule.public else ("302 to login" if rule.kind == UI else "401")
    return "200" if role in rule.read else "403"


def expected_write(rule: Rule, method: str, role: str) -> str:
    if role == ANON:
        return "302 to login" if rule.kind == UI else "401"
    if role in rule.write[method]:
        status = rule.write_status or WRITE_SUCCESS[rule.kind, method]
        return f"{status}, NOT audited" if rule.dry_run else f"{status}, audited"
    return "403, unchanged"


@pytest.mark.parametrize("name", list(MATRIX))
def test_get(name: str, objs, clients) -> None:
    rule = MATRIX[name]
    url = _url(name, objs)
    got = {role: _outcome(clients(role, rule.kind).get(url)) for role in (ANON, *ROLES)}
    assert got == {role: expected_get(rule, role) for role in (ANON, *ROLES)}


WRITE_CASES = [(name, method) for name, rule in MATRIX.items() for method in rule.write]


@pytest.mark.parametrize(("name", "method"), WRITE_CASES, ids=[f"{n}-{m}" for n, m in WRITE_CASES])
def test_write(name: str, method: str, objs, clients) -> None:
    """Each role's attempt runs in a savepoint that is rolled back, so all start alike."""
    rule = MATRIX[name]
    url = _url(name, objs)
    for role in ROLES:
        clients(role, rule.kind)  # users, sessions and tokens exist before the savepoints
    got = {}
    for role in (ANON, *ROLES):
        with transaction.atomic():
            audit_before = AuditEntry.objects.count()
            response = _send(
                clients(role, rule.kind), rule.kind, method, url, PAYLOADS[name, method](objs)
            )
            outcome = _outcome(response)
            if outcome in ("302", "200", "201", "204"):
                audited = AuditEntry.objects.count() > audit_before
                outcome += ", audited" if audited else ", NOT audited"
            elif outcome == "403":
                unchanged = AuditEntry.objects.count() == audit_before
                outcome += ", unchanged" if unchanged else ", CHANGED"
            elif outcome == "400":
                outcome += f" {response.content[:300]!r}"
            got[role] = outcome
            transaction.set_rollback(True)
    assert got == {role: expected_write(rule, method, role) for role in (ANON, *ROLES)}


def test_card_cannot_be_deleted(objs, api_client_for) -> None:
    response = api_client_for(ADMIN).delete(reverse("api:card-detail", args=[objs.card.pk]))
    assert response.status_code == 405
    assert Card.objects.filter(pk=objs.card.pk).exists()


@pytest.mark.parametrize(
    "name",
    ["api:auditentry-list", "api:apitoken-list", "api:importjob-detail", "api:auditentry-detail"],
)
def test_read_only_endpoints_refuse_writes(name: str, objs, api_client_for) -> None:
    """Even an administrator cannot write to the audit log, tokens or finished imports."""
    client = api_client_for(ADMIN)
    url = _url(name, objs)
    methods = ("post",) if name.endswith("-list") else ("put", "patch", "delete")
    before = AuditEntry.objects.count()
    for method in methods:
        assert getattr(client, method)(url, {}, format="json").status_code == 405, method
    assert AuditEntry.objects.count() == before


# --- API tokens ----------------------------------------------------------------------------

API_WRITES = [(n, m) for n, rule in MATRIX.items() if rule.kind == API for m in rule.write]


def _counts() -> tuple[int, ...]:
    return tuple(
        model.objects.count()
        for model in (AuditEntry, Subscriber, Card, CardProfile, ImportJob, OtaJob, SmscLink)
    )


def _read_only_attempts(objs, api_client_for) -> dict[str, tuple[int, bool, str]]:  # type: ignore[no-untyped-def]
    """Every API write with a read-only administrator token, each rolled back after:
    (status, nothing changed, message)."""
    client = api_client_for(ADMIN, write=False)
    assert client.get(reverse("api:subscriber-list")).status_code == 200  # it does read
    outcomes = {}
    for name, method in API_WRITES:
        with transaction.atomic():
            before = _counts()
            response = _send(client, API, method, _url(name, objs), PAYLOADS[name, method](objs))
            detail = response.json().get("detail", "") if response.content else ""
            outcomes[f"{method.upper()} {name}"] = (
                response.status_code,
                _counts() == before,
                detail,
            )
            transaction.set_rollback(True)
    return outcomes


def test_read_only_token_cannot_write(objs, api_client_for) -> None:
    outcomes = _read_only_attempts(objs, api_client_for)
    assert {k: v[:2] for k, v in outcomes.items()} == dict.fromkeys(outcomes, (403, True))


def test_read_only_token_refusal_says_why(objs, api_client_for) -> None:
    outcomes = _read_only_attempts(objs, api_client_for)
    generic = sorted(k for k, v in outcomes.items() if v[2] != "This API token is read-only")
    assert not generic, generic


def _token_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.fixture
def admin_token(make_user) -> tuple[ApiToken, str]:
    return services.create_api_token(
        actor=ACTOR, user=make_user(ADMIN), name="t", write_enabled=True
    )


def test_active_token_is_accepted(admin_token) -> None:
    _token, key = admin_token
    assert _token_client(key).get(reverse("api:subscriber-list")).status_code == 200
    bearer = APIClient()
    bearer.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert bearer.get(reverse("api:subscriber-list")).status_code == 200


def test_expired_token_is_refused(admin_token) -> None:
    token, key = admin_token
    ApiToken.objects.filter(pk=token.pk).update(
        expires=timezone.now() - datetime.timedelta(seconds=1)
    )
    response = _token_client(key).get(reverse("api:subscriber-list"))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_revoked_token_is_refused(admin_token) -> None:
    token, key = admin_token
    services.revoke_api_token(actor=ACTOR, token=token)
    for method in ("get", "post"):
        response = getattr(_token_client(key), method)(reverse("api:subscriber-list"))
        assert response.status_code == 401, method


@pytest.mark.parametrize("key", ["pt_", "pt_0000000000000000000000000000", "not-a-token"])
def test_unknown_token_is_refused(key: str, admin_token) -> None:
    assert _token_client(key).get(reverse("api:subscriber-list")).status_code == 401


def test_token_of_deactivated_user_is_refused(admin_token) -> None:
    token, key = admin_token
    token.user.is_active = False
    token.user.save()
    assert _token_client(key).get(reverse("api:subscriber-list")).status_code == 401


def test_forged_token_with_known_prefix_is_refused(admin_token) -> None:
    _token, key = admin_token
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    assert _token_client(forged).get(reverse("api:subscriber-list")).status_code == 401
