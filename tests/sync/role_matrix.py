"""Expected access to the sync URLs, in the shape of tests/portal/test_role_matrix.py's MATRIX.

The lead merges `SYNC_MATRIX` into that table: each entry maps to
`Rule(kind, read, write, obj)` (`kind` "ui"/"api", `read` the roles whose GET gives 200,
`write` method -> roles, `obj` the test object whose pk the URL takes; the `objs` fixture of
tests/sync/test_views_api.py shows how to build those objects). Write payloads are not given
here yet. tests/sync/test_views_api.py checks every row's GET for every role.

The endpoint `syncml` is not staff-facing: devices authenticate inside SyncML (a GET is 405
for everyone, anonymous included; a POST without a SyncML body is 4xx).
"""

from __future__ import annotations

ADMIN, OPERATOR, SUPPORT, AUDITOR = "administrator", "operator", "support", "auditor"
EVERYONE = frozenset({ADMIN, OPERATOR, SUPPORT, AUDITOR})
MANAGERS = frozenset({ADMIN, OPERATOR})
NOBODY: frozenset[str] = frozenset()
SINGLE_SUBSCRIBER_ACTORS = MANAGERS | {SUPPORT}  # operate_single_card or run_ota_operation

SYNC_MATRIX: dict[str, dict] = {
    "sync:profile_list": {"kind": "ui", "read": EVERYONE},
    "sync:profile_detail": {"kind": "ui", "read": EVERYONE, "obj": "sync_profile"},
    "sync:profile_add": {"kind": "ui", "read": MANAGERS, "write": {"post": MANAGERS}},
    "sync:profile_edit": {
        "kind": "ui",
        "read": MANAGERS,
        "write": {"post": MANAGERS},
        "obj": "sync_profile",
    },
    # POST only; the new secret is shown once on the profile page.
    "sync:profile_reset_credentials": {
        "kind": "ui",
        "read": NOBODY,
        "write": {"post": MANAGERS},
        "obj": "sync_profile",
        "get_status": {ADMIN: 405, OPERATOR: 405, SUPPORT: 403, AUDITOR: 403},
    },
    # POST only: a Server-Alerted Notification by SMS acts on one subscriber (support may).
    "sync:profile_server_alert": {
        "kind": "ui",
        "read": NOBODY,
        "write": {"post": SINGLE_SUBSCRIBER_ACTORS},
        "obj": "sync_profile",
        "get_status": {ADMIN: 405, OPERATOR: 405, SUPPORT: 405, AUDITOR: 403},
    },
    "sync:template_list": {"kind": "ui", "read": EVERYONE},
    "sync:template_detail": {"kind": "ui", "read": EVERYONE, "obj": "sync_template"},
    "sync:template_add": {"kind": "ui", "read": MANAGERS, "write": {"post": MANAGERS}},
    "sync:template_edit": {
        "kind": "ui",
        "read": MANAGERS,
        "write": {"post": MANAGERS},
        "obj": "sync_template",
    },
    "sync:session_list": {"kind": "ui", "read": EVERYONE},
    "sync:session_detail": {"kind": "ui", "read": EVERYONE, "obj": "sync_session"},
    "sync:device_list": {"kind": "ui", "read": EVERYONE},
    "sync:device_detail": {"kind": "ui", "read": EVERYONE, "obj": "sync_device"},
    # Everyone sees the counts; the contents need sync.view_contact_contents (administrator).
    "sync:addressbook": {"kind": "ui", "read": EVERYONE, "obj": "subscriber"},
    "sync:helddelete_list": {"kind": "ui", "read": EVERYONE},
    "sync:helddelete_detail": {"kind": "ui", "read": EVERYONE, "obj": "sync_held"},
    # POST only (GET 405 for logged-in users).
    "sync:helddelete_decide": {
        "kind": "ui",
        "read": NOBODY,
        "write": {"post": MANAGERS},
        "obj": "sync_held",
        # Permission first: those who may not decide get 403, the others 405 for a GET.
        "get_status": {ADMIN: 405, OPERATOR: 405, SUPPORT: 403, AUDITOR: 403},
    },
    "syncml": {
        "kind": "ui",
        "read": NOBODY,
        "public": True,
        "get_status": dict.fromkeys(("anonymous", *EVERYONE), 405),
        "writes_tested_in": "tests/sync/test_engine.py",
    },
    "api:syncprofile-list": {"kind": "api", "read": EVERYONE, "write": {"post": MANAGERS}},
    "api:syncprofile-detail": {
        "kind": "api",
        "read": EVERYONE,
        "obj": "sync_profile",
        "write": {"put": MANAGERS, "patch": MANAGERS},
    },
    "api:syncprofile-reset-credentials": {
        "kind": "api",
        "read": NOBODY,
        "obj": "sync_profile",
        "write": {"post": MANAGERS},
        "get_status": dict.fromkeys(EVERYONE, 405),
    },
    "api:syncprofile-server-alert": {
        "kind": "api",
        "read": NOBODY,
        "obj": "sync_profile",
        "write": {"post": SINGLE_SUBSCRIBER_ACTORS},
        # The action's permission applies to its POST; a GET is 405 for every reader.
        "get_status": dict.fromkeys(EVERYONE, 405),
    },
    "api:syncprofiletemplate-list": {"kind": "api", "read": EVERYONE, "write": {"post": MANAGERS}},
    "api:syncprofiletemplate-detail": {
        "kind": "api",
        "read": EVERYONE,
        "obj": "sync_template",
        "write": {"put": MANAGERS, "patch": MANAGERS},
    },
    "api:syncsession-list": {"kind": "api", "read": EVERYONE},
    "api:syncsession-detail": {"kind": "api", "read": EVERYONE, "obj": "sync_session"},
    "api:device-list": {"kind": "api", "read": EVERYONE},
    "api:device-detail": {"kind": "api", "read": EVERYONE, "obj": "sync_device"},
    "api:contact-list": {"kind": "api", "read": EVERYONE},
    "api:contact-detail": {"kind": "api", "read": EVERYONE, "obj": "sync_contact"},
    "api:helddelete-list": {"kind": "api", "read": EVERYONE},
    "api:helddelete-detail": {"kind": "api", "read": EVERYONE, "obj": "sync_held"},
    "api:helddelete-approve": {
        "kind": "api",
        "read": NOBODY,
        "obj": "sync_held",
        "write": {"post": MANAGERS},
        "get_status": dict.fromkeys(EVERYONE, 405),
    },
    "api:helddelete-reject": {
        "kind": "api",
        "read": NOBODY,
        "obj": "sync_held",
        "write": {"post": MANAGERS},
        "get_status": dict.fromkeys(EVERYONE, 405),
    },
}

# Write payloads of the UI forms (merged into tests/portal/test_role_matrix.py's PAYLOADS);
# `o` is that test's objects: o.sync_profile, o.sync_template, o.spare_subscriber (no profile).
_SETTINGS = {
    "server_url": "https://sync.operator.example/syncml",
    "datastores": '[{"local_name": "Contacts", "remote_uri": "contacts",'
    ' "content_type": "text/x-vcard", "mode": 200}]',
    "interval_minutes": "60",
    "trigger_ota": "on",
    "conflict_policy": "merge",
}

SYNC_WRITE_PAYLOADS: dict[tuple[str, str], object] = {
    ("sync:profile_add", "post"): lambda o: {
        "msisdn": o.spare_subscriber.msisdn,
        "template": o.sync_template.pk,
    },
    ("sync:profile_edit", "post"): lambda o: {
        **_SETTINGS,
        "template": o.sync_template.pk,
        "overrides": ["interval_minutes"],
    },
    ("sync:profile_reset_credentials", "post"): lambda o: {},
    ("sync:profile_server_alert", "post"): lambda o: {"sync_type": "206"},
    ("api:syncprofile-server-alert", "post"): lambda o: {"sync_type": 207},
    ("sync:template_add", "post"): lambda o: {**_SETTINGS, "name": "matrix form template"},
    ("sync:template_edit", "post"): lambda o: {**_SETTINGS, "name": o.sync_template.name},
}
