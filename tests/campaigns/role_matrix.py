"""Expected access to the campaign URLs, in the shape of tests/portal/test_role_matrix.py's
`Rule(kind, read, write, obj, get_status)`; the lead merges `CAMPAIGNS_MATRIX` into `MATRIX` and
`CAMPAIGNS_WRITE_PAYLOADS` into `PAYLOADS`.

Reads need `cardmgmt.view_otajob` (every role); writes `cardmgmt.run_campaign` (administrator,
operator). Objects the URLs take (build them in the `objs` fixture):
- `campaign`: `campaigns.services.create_campaign(actor=ACTOR, name="matrix", action="audit")`
- `campaign_run`: `campaigns.services.start_run(actor=ACTOR, campaign=<another campaign>)`
  (an active run, so pause/cancel succeed; `campaign_run_paused` for resume,
  `campaign_run_failed` a finished run with a failed target for rerun; `campaign_idle` a
  campaign without an active run for start/delete).
POST-only UI actions answer 405 to a GET from those permitted and 403 to the others.
"""

from __future__ import annotations

ADMIN, OPERATOR, SUPPORT, AUDITOR = "administrator", "operator", "support", "auditor"
EVERYONE = frozenset({ADMIN, OPERATOR, SUPPORT, AUDITOR})
MANAGERS = frozenset({ADMIN, OPERATOR})
NOBODY: frozenset[str] = frozenset()
POST_ONLY = {ADMIN: 405, OPERATOR: 405, SUPPORT: 403, AUDITOR: 403}

CAMPAIGNS_MATRIX: dict[str, dict] = {
    "campaigns:campaign_list": {"kind": "ui", "read": EVERYONE},
    "campaigns:campaign_add": {"kind": "ui", "read": MANAGERS, "write": {"post": MANAGERS}},
    "campaigns:campaign_detail": {"kind": "ui", "read": EVERYONE, "obj": "campaign"},
    "campaigns:campaign_edit": {
        "kind": "ui",
        "read": MANAGERS,
        "write": {"post": MANAGERS},
        "obj": "campaign",
    },
    "campaigns:campaign_delete": {
        "kind": "ui",
        "read": NOBODY,
        "write": {"post": MANAGERS},
        "obj": "campaign_idle",
        "get_status": POST_ONLY,
    },
    "campaigns:campaign_start": {
        "kind": "ui",
        "read": NOBODY,
        "write": {"post": MANAGERS},
        "obj": "campaign_idle",
        "get_status": POST_ONLY,
    },
    "campaigns:run_detail": {"kind": "ui", "read": EVERYONE, "obj": "campaign_run"},
    "campaigns:run_progress": {"kind": "ui", "read": EVERYONE, "obj": "campaign_run"},
    "campaigns:run_targets": {"kind": "ui", "read": EVERYONE, "obj": "campaign_run"},
    "campaigns:run_targets_csv": {"kind": "ui", "read": EVERYONE, "obj": "campaign_run"},
    "campaigns:run_pause": {
        "kind": "ui",
        "read": NOBODY,
        "write": {"post": MANAGERS},
        "obj": "campaign_run",
        "get_status": POST_ONLY,
    },
    "campaigns:run_resume": {
        "kind": "ui",
        "read": NOBODY,
        "write": {"post": MANAGERS},
        "obj": "campaign_run_paused",
        "get_status": POST_ONLY,
    },
    "campaigns:run_cancel": {
        "kind": "ui",
        "read": NOBODY,
        "write": {"post": MANAGERS},
        "obj": "campaign_run",
        "get_status": POST_ONLY,
    },
    "campaigns:run_rerun": {
        "kind": "ui",
        "read": NOBODY,
        "write": {"post": MANAGERS},
        "obj": "campaign_run_failed",
        "get_status": POST_ONLY,
    },
    "api:campaign-list": {"kind": "api", "read": EVERYONE, "write": {"post": MANAGERS}},
    "api:campaign-detail": {
        "kind": "api",
        "read": EVERYONE,
        "write": {"put": MANAGERS, "patch": MANAGERS, "delete": MANAGERS},
        "obj": "campaign_idle",
    },
    "api:campaign-start": {
        "kind": "api",
        "read": NOBODY,
        "write": {"post": MANAGERS},
        "obj": "campaign_idle",
        "get_status": dict.fromkeys(EVERYONE, 405),
        "write_status": 201,
    },
    "api:campaign-preview": {
        "kind": "api",
        "read": NOBODY,
        "write": {"post": MANAGERS},
        "get_status": dict.fromkeys(EVERYONE, 405),
        "write_status": 200,
        # A dry run changes nothing: no audit entry is expected.
    },
    "api:campaignrun-list": {"kind": "api", "read": EVERYONE},
    "api:campaignrun-detail": {"kind": "api", "read": EVERYONE, "obj": "campaign_run"},
    "api:campaignrun-pause": {
        "kind": "api",
        "read": NOBODY,
        "write": {"post": MANAGERS},
        "obj": "campaign_run",
        "get_status": dict.fromkeys(EVERYONE, 405),
        "write_status": 200,
    },
    "api:campaignrun-resume": {
        "kind": "api",
        "read": NOBODY,
        "write": {"post": MANAGERS},
        "obj": "campaign_run_paused",
        "get_status": dict.fromkeys(EVERYONE, 405),
        "write_status": 200,
    },
    "api:campaignrun-cancel": {
        "kind": "api",
        "read": NOBODY,
        "write": {"post": MANAGERS},
        "obj": "campaign_run",
        "get_status": dict.fromkeys(EVERYONE, 405),
        "write_status": 200,
    },
    "api:campaignrun-rerun": {
        "kind": "api",
        "read": NOBODY,
        "write": {"post": MANAGERS},
        "obj": "campaign_run_failed",
        "get_status": dict.fromkeys(EVERYONE, 405),
        "write_status": 201,
    },
    "api:campaigntarget-list": {"kind": "api", "read": EVERYONE, "obj": "campaign_run"},
}

_FORM = {
    "action": "audit",
    "target_kind": "filter",
    "only_active": "on",
    "schedule_kind": "manual",
    "schedule_timezone": "UTC",
    "window_timezone": "UTC",
    "chunk_size": "100",
    "priority": "10",
}

# (url name, method) -> payload builder taking the `objs` namespace.
CAMPAIGNS_WRITE_PAYLOADS: dict[tuple[str, str], object] = {
    ("campaigns:campaign_add", "post"): lambda o: {**_FORM, "name": "matrix new"},
    ("campaigns:campaign_edit", "post"): lambda o: {**_FORM, "name": o.campaign.name},
    ("campaigns:campaign_delete", "post"): lambda o: {},
    ("campaigns:campaign_start", "post"): lambda o: {},
    ("campaigns:run_pause", "post"): lambda o: {},
    ("campaigns:run_resume", "post"): lambda o: {},
    ("campaigns:run_cancel", "post"): lambda o: {},
    ("campaigns:run_rerun", "post"): lambda o: {},
    ("api:campaign-list", "post"): lambda o: {
        "name": "matrix api",
        "action": "audit",
        "chunk_size": 100,
    },
    ("api:campaign-detail", "put"): lambda o: {
        "name": o.campaign_idle.name,
        "action": "audit",
        "chunk_size": 200,
    },
    ("api:campaign-detail", "patch"): lambda o: {"description": "patched"},
    ("api:campaign-detail", "delete"): lambda o: {},
    ("api:campaign-start", "post"): lambda o: {},
    ("api:campaign-preview", "post"): lambda o: {"action": "audit", "target_kind": "filter"},
    ("api:campaignrun-pause", "post"): lambda o: {},
    ("api:campaignrun-resume", "post"): lambda o: {},
    ("api:campaignrun-cancel", "post"): lambda o: {},
    ("api:campaignrun-rerun", "post"): lambda o: {},
}
