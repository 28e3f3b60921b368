"""From the inventory's rows to the pure OTA package's dataclasses.

The only place that unseals card keys: it runs inside the worker that builds packets.
"""

from __future__ import annotations

from cardmgmt import ota
from cardmgmt.choices import CounterMode, KeyAlgorithm, PorMode
from cardmgmt.models import AppletVersion, CardProfile, KeySet
from portal import crypto

_COUNTER = {
    CounterMode.NONE: ota.CounterMode.NONE,
    CounterMode.PRESENT: ota.CounterMode.NOT_CHECKED,
    CounterMode.HIGHER: ota.CounterMode.HIGHER,
    CounterMode.NEXT: ota.CounterMode.PLUS_ONE,
}
_ALGORITHM = {
    KeyAlgorithm.DES: ota.KeyAlgorithm.DES_CBC,
    KeyAlgorithm.TDES_2KEY: ota.KeyAlgorithm.TDES_2KEY,
    KeyAlgorithm.TDES_3KEY: ota.KeyAlgorithm.TDES_3KEY,
    KeyAlgorithm.AES_128: ota.KeyAlgorithm.AES,
    KeyAlgorithm.AES_192: ota.KeyAlgorithm.AES,
    KeyAlgorithm.AES_256: ota.KeyAlgorithm.AES,
}


def profile_spi(profile: CardProfile) -> ota.Spi:
    """Ciphered and MAC'd commands; a ciphered, MAC'd PoR always, by SMS-SUBMIT over SMPP."""
    return ota.Spi(
        security=ota.Security.CC,
        ciphering=True,
        counter=_COUNTER[CounterMode(profile.counter_mode)],
        por=ota.PorRequest.ALWAYS,
        por_security=ota.Security.CC,
        por_ciphering=True,
        por_via_submit=profile.por_mode == PorMode.SMS_SUBMIT,
    )


def profile_params(profile: CardProfile, *, algorithm: str, kvn: int) -> ota.CardProfileParams:
    family = _ALGORITHM[KeyAlgorithm(algorithm)]
    return ota.CardProfileParams(
        name=profile.name,
        spi=profile_spi(profile),
        kic_algorithm=family,
        kid_algorithm=family,
        kvn=kvn,
        cmac_length=profile.cmac_length,
        ram_tar=bytes.fromhex(profile.ram_tar),
        rfm_tar=bytes.fromhex(profile.rfm_tar),
        max_load_block=profile.max_load_block,
        include_descriptor=profile.load_descriptor,
    )


def preferred_algorithm(profile: CardProfile) -> str:
    """The algorithm used to plan for a profile when no card's key set is at hand."""
    algorithms = list(profile.algorithms or [])
    return algorithms[0] if algorithms else KeyAlgorithm.AES_128


def card_keys(keyset: KeySet) -> ota.KeySet:
    return ota.KeySet(
        kic_key=crypto.unseal(bytes(keyset.kic), "kic"),
        kid_key=crypto.unseal(bytes(keyset.kid), "kid"),
    )


def install_params(version: AppletVersion) -> ota.InstallParams:
    toolkit = ota.ToolkitParams(
        priority=version.priority,
        max_timers=version.max_timers,
        max_menu_text_length=version.max_menu_text_length,
        menu_entries=tuple((int(p), int(i)) for p, i in version.menu_entries or []),
        max_channels=version.max_channels,
        msl=bytes((0x01, version.min_security_level)),
        tars=(bytes.fromhex(version.toolkit_tar),) if version.toolkit_tar else (),
        max_services=0,
    )
    return ota.InstallParams(
        non_volatile_quota=version.non_volatile_quota,
        volatile_quota=version.volatile_quota,
        uicc_toolkit=toolkit,
    )


def load_and_install(version: AppletVersion) -> ota.LoadAndInstall:
    cap = ota.parse_cap(bytes(version.cap_file))
    return ota.LoadAndInstall(
        cap=cap,
        instance_aid=bytes.fromhex(version.instance_aid),
        privileges=bytes.fromhex(version.privileges),
        install_params=install_params(version),
    )


def sms_count(version: AppletVersion, profile: CardProfile) -> tuple[int, int]:
    """(secured packets, SMS) that loading and installing `version` takes on `profile`."""
    params = profile_params(profile, algorithm=preferred_algorithm(profile), kvn=1)
    script = ota.plan(load_and_install(version), params)
    return script.packet_count, script.sms_count
