"""Catalog services: applets and their versions (uploaded CAP files)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from cardmgmt import ota
from cardmgmt.models import Applet, AppletVersion
from cardmgmt.services.inventory import _create, _update
from portal.context import Actor

MAX_CAP_BYTES = 2 * 1024 * 1024

__all__ = ["update_install_defaults", "upload_applet_version"]


def _default_tar(instance_aid: bytes) -> str:
    # TS 102 226 / pySim convention: an applet without a declared TAR answers to bytes
    # 13-15 of its instance AID.
    return instance_aid[12:15].hex().upper() if len(instance_aid) >= 15 else ""


@transaction.atomic
def upload_applet_version(
    *,
    actor: Actor,
    applet_name: str,
    version: str,
    cap_bytes: bytes,
    cap_name: str,
    description: str = "",
) -> AppletVersion:
    """Parse a CAP file and store it as a new version of an applet (created if new)."""
    if not applet_name.strip():
        raise ValidationError({"applet": "name the applet"})
    if not version.strip():
        raise ValidationError({"version": "give a version"})
    if len(cap_bytes) > MAX_CAP_BYTES:
        raise ValidationError({"cap_file": f"a CAP file is at most {MAX_CAP_BYTES} bytes"})
    try:
        cap = ota.parse_cap(cap_bytes)
    except ota.OtaError as exc:
        raise ValidationError({"cap_file": f"not a usable CAP file: {exc}"}) from None
    if not cap.applet_aids:
        raise ValidationError({"cap_file": "the CAP file declares no applet"})
    applet = Applet.objects.filter(name=applet_name.strip()).first()
    if applet is None:
        applet = _create(actor, Applet(name=applet_name.strip(), description=description))
    if AppletVersion.objects.filter(applet=applet, version=version.strip()).exists():
        raise ValidationError({"version": f"{applet} already has a version {version}"})
    instance = cap.applet_aids[0]
    return _create(
        actor,
        AppletVersion(
            applet=applet,
            version=version.strip(),
            cap_file=cap_bytes,
            cap_name=cap_name[:255],
            package_aid=cap.package_aid.hex().upper(),
            package_version="{}.{}".format(*cap.package_version),
            applet_aids=[aid.hex().upper() for aid in cap.applet_aids],
            components=[{"name": name, "size": len(body)} for name, body in cap.components.items()],
            imports=[
                {"aid": aid.hex().upper(), "version": "{}.{}".format(*v)} for aid, v in cap.imports
            ],
            load_file_size=cap.load_file_size(include_descriptor=False),
            load_file_size_with_descriptor=cap.load_file_size(include_descriptor=True),
            instance_aid=instance.hex().upper(),
            toolkit_tar=_default_tar(instance),
            uploaded_by=actor.label,
        ),
        message=f"CAP {cap_name}, package {cap.package_aid.hex().upper()}",
    )


@transaction.atomic
def update_install_defaults(
    *, actor: Actor, version: AppletVersion, **changes: Any
) -> AppletVersion:
    """Change the default install parameters of a version; they must still encode."""
    from cardmgmt.otabridge import install_params

    allowed = {
        "instance_aid",
        "privileges",
        "toolkit_tar",
        "priority",
        "max_timers",
        "menu_entries",
        "max_menu_text_length",
        "max_channels",
        "min_security_level",
        "non_volatile_quota",
        "volatile_quota",
    }
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationError(f"not install parameters: {', '.join(sorted(unknown))}")
    candidate = AppletVersion(
        **{f.attname: getattr(version, f.attname) for f in AppletVersion._meta.concrete_fields}
    )
    for name, value in changes.items():
        setattr(candidate, name, value)
    try:
        install_params(candidate).encode()
    except (ota.OtaError, ValueError, TypeError) as exc:
        raise ValidationError(f"these install parameters do not encode: {exc}") from None
    return _update(actor, version, changes)


# --- SMSC links -----------------------------------------------------------------------------


@transaction.atomic
def save_smsc_link(*, actor: Actor, link=None, password: str = "", **fields: Any):  # type: ignore[no-untyped-def]
    """Create or change an SMSC link. The password is sealed; empty keeps the current one."""
    from cardmgmt.models import SmscLink
    from portal import crypto

    if link is None:
        if not password:
            raise ValidationError({"password": "an SMSC link needs a password"})
        return _create(
            actor, SmscLink(password=crypto.seal(password.encode(), "smsc-password"), **fields)
        )
    if password:
        fields["password"] = crypto.seal(password.encode(), "smsc-password")
    return _update(actor, link, fields)


__all__ += ["save_smsc_link"]
