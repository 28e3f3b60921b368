"""What the sync applet operations need from the sync side: the applet's TAR and, for a push,
the subscriber's parameter record (DESIGN 4).

`cardmgmt/views.py` imports `sync.services.applet_operation_parameters`, which the sync app
does not provide (yet); campaigns use this module instead. The record holds the device
secret: it is built only in the worker that secures the packet and never stored in a job's
parameters (only its version is).
"""

from __future__ import annotations

from typing import Any

from cardmgmt.models import AppletVersion, Card
from cardmgmt.ota import syncapplet
from sync.models import SyncProfile
from sync.services import build_param_record


def applet_tar(version: AppletVersion | None = None) -> str:
    """The sync applet's toolkit TAR: the chosen version's, else the applet's default."""
    if version is not None and version.toolkit_tar:
        return version.toolkit_tar.upper()
    return syncapplet.TAR.hex().upper()


def param_records(subscriber_ids: list[int]) -> dict[int, tuple[int, bytes]]:
    """subscriber id -> (record version, encoded record) for those with a sync profile."""
    profiles = SyncProfile.objects.filter(subscriber_id__in=subscriber_ids)
    return {p.subscriber_id: (p.version, build_param_record(p)) for p in profiles}


def applet_operation_parameters(
    *,
    card: Card,
    operation: str,
    mode: int | None = None,
    campaign_ref: str = "",
    version: AppletVersion | None = None,
) -> dict[str, Any]:
    """Parameters of one `start_ota_job` for push_params / trigger_sync on `card`."""
    tar = applet_tar(version)
    if operation == "trigger_sync":
        params: dict[str, Any] = {"tar": tar}
        if mode is not None:
            params["mode"] = mode
        if campaign_ref:
            params["campaign_ref"] = campaign_ref.encode().hex()
        return params
    if operation == "push_params":
        subscriber = getattr(card, "subscriber", None)
        records = param_records([subscriber.pk]) if subscriber else {}
        if subscriber is None or subscriber.pk not in records:
            raise ValueError(f"card {card} has no subscriber with a sync profile")
        version_no, record = records[subscriber.pk]
        return {"tar": tar, "record": record.hex(), "version": version_no}
    return {}
