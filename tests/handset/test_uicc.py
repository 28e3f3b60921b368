"""The virtual UICC behind the fleet router, driven in-process (no SMPP): security checks,
GlobalPlatform content management, the sync applet, failure injection and its state."""

from __future__ import annotations

import pytest
from handset_lab import (
    KIC,
    KID,
    MSISDN,
    OTA_ADDRESS,
    PROFILE,
    RAM_TAR,
    Lab,
    make_card,
    make_lab,
    sync_cap,
)

from cardmgmt.ota import (
    CounterMode,
    KeySet,
    PorStatus,
    Reassembler,
    SecuredCommandPacket,
    Spi,
    command_user_data,
    decode_response_packet,
    encode_command,
    expanded_command_script,
    gp,
    parse_cap,
    parse_compact_result,
    parse_expanded_response,
    parse_get_status,
)
from cardmgmt.ota import syncapplet as sa
from cardmgmt.ota.planner import AppletCommands, Audit, Delete, LoadAndInstall
from cardmgmt.ota.syncapplet import RecordState, TriggerReason
from handset.fleet import FleetRouter
from handset.smsc import Undeliverable
from handset.uicc import CardKeys, Uicc


def install(lab: Lab, code_size: int = 1500, **options) -> list:
    cap = parse_cap(sync_cap(code_size))
    params = options.pop("install_params", sa.install_parameters())
    return lab.direct(LoadAndInstall(cap, install_params=params, **options))


def test_load_and_install_registers_the_applet_and_its_tar(lab: Lab) -> None:
    pors = install(lab)
    assert len(pors) >= 3
    assert all(p.status is PorStatus.OK and p.verified and p.ciphered for p in pors)
    results = [parse_compact_result(p.additional_data) for p in pors]
    assert all(r.executed == 1 and r.sw == 0x9000 for r in results)
    card = lab.card
    assert set(card.load_files) == {sa.PACKAGE_AID}
    assert card.load_files[sa.PACKAGE_AID].modules == (sa.APPLET_AID,)
    assert card.load_files[sa.PACKAGE_AID].version == (1, 0)
    instance = card.instances[sa.INSTANCE_AID]
    assert instance.tars == (sa.TAR,) and instance.msl == 0x12
    assert card.known_tars()[sa.TAR] == 0x12
    assert card.keys[1].counter == lab.counter


def test_packet_to_the_applet_before_install_is_tar_unknown(lab: Lab) -> None:
    (por,) = lab.direct(AppletCommands(sa.TAR, (sa.read_summary_apdu(),)))
    assert por.status is PorStatus.TAR_UNKNOWN and not por.verified
    assert lab.card.keys[1].counter == 0  # refused packets do not move the counter


def test_audit_legacy_and_tlv_formats(lab: Lab) -> None:
    install(lab)
    for p1, tlv_format in [(0x40, True), (0x40, False), (0x20, True), (0x10, False), (0x80, True)]:
        (por,) = lab.direct(Audit(p1=p1, tlv_format=tlv_format))
        result = parse_compact_result(por.additional_data)
        assert result.sw == 0x9000
        entries = parse_get_status(result.data, p1, tlv_format=tlv_format)
        assert len(entries) == 1
        if p1 == 0x40:
            assert entries[0].aid == sa.INSTANCE_AID and entries[0].lifecycle == 0x07
            if tlv_format:
                assert entries[0].load_file_aid == sa.PACKAGE_AID
        elif p1 == 0x80:
            assert entries[0].lifecycle == 0x0F
        else:
            assert entries[0].aid == sa.PACKAGE_AID
            if p1 == 0x10:
                assert entries[0].module_aids == (sa.APPLET_AID,)
            else:
                assert entries[0].version == b"\x01\x00"
    (por,) = lab.direct(Audit(p1=0x40, aid=bytes.fromhex("D0D0D0D0D0")))
    assert parse_compact_result(por.additional_data).sw == 0x6A88


def test_get_status_pages_with_6310_and_next() -> None:
    card = make_card()
    for n in range(12):
        aid = bytes.fromhex("A0000005592000") + bytes((n,)) + bytes(8)
        card.preinstall(
            bytes.fromhex("A00000055920") + bytes((n,)), aid, aid, install_params=b"\xc9\x00"
        )
    lab = Lab(FleetRouter([card]))
    (por,) = lab.direct(Audit(p1=0x40))
    result = parse_compact_result(por.additional_data)
    pages = [result]
    while result.sw == 0x6310:
        (por,) = lab.direct(
            AppletCommands(RAM_TAR, (gp.get_status(0x40, tlv_format=True, next_=True),))
        )
        result = parse_compact_result(por.additional_data)
        pages.append(result)
    assert len(pages) >= 2 and pages[-1].sw == 0x9000
    assert all(len(p.data) <= 255 for p in pages)
    aids = [e.aid for p in pages for e in parse_get_status(p.data)]
    assert len(aids) == 12 == len(set(aids))
    # "next" without a GET STATUS to continue
    (por,) = lab.direct(AppletCommands(RAM_TAR, (gp.get_status(0x40, next_=True),)))
    assert parse_compact_result(por.additional_data).sw == 0x6985


def test_long_por_comes_back_concatenated() -> None:
    card = make_card()
    for n in range(5):
        aid = bytes.fromhex("A0000005592000") + bytes((n,)) + bytes(8)
        card.preinstall(
            bytes.fromhex("A00000055920") + bytes((n,)), aid, aid, install_params=b"\xc9\x00"
        )
    lab = Lab(FleetRouter([card]))
    (message,) = lab.secure(Audit(p1=0x40))
    mos = lab.route_message(message.user_data)
    assert len(mos) >= 2
    assert all(m.esm_class == 0x40 and m.pid == 0x00 and m.dcs == 0xF6 for m in mos)
    joiner = Reassembler()
    whole = [joiner.add(m.payload, m.from_msisdn) for m in reversed(mos)][-1]
    assert whole is not None and 0x71 in whole.ies
    p = PROFILE
    por = decode_response_packet(whole.packet, spi=p.spi, kic=p.kic, kid=p.kid, keys=lab.keys)
    assert len(parse_get_status(parse_compact_result(por.additional_data).data)) == 5


def test_replay_wrong_keys_and_unknown_tar(lab: Lab) -> None:
    (message,) = lab.secure(Audit())
    first = lab.decode(lab.route_message(message.user_data)[0].payload)
    assert first.status is PorStatus.OK
    replay = lab.decode(lab.route_message(message.user_data)[0].payload)
    assert replay.status is PorStatus.COUNTER_LOW and not replay.verified
    wrong = lab.direct(Audit(), keys=KeySet(bytes(16), bytes(16)))[0]
    assert wrong.status is PorStatus.RC_CC_DS_FAILED
    unknown = lab.direct(AppletCommands(bytes.fromhex("ABCDEF"), (b"\x00\xa4\x00\x00",)))[0]
    assert unknown.status is PorStatus.TAR_UNKNOWN


def test_counter_plus_one_and_minimum_security_level(lab: Lab) -> None:
    card = lab.card
    card.keys[1].counter = 10

    def send(spi: Spi, cntr: int, tar: bytes = RAM_TAR) -> PorStatus:
        packet = encode_command(
            SecuredCommandPacket(spi, PROFILE.kic, PROFILE.kid, tar, cntr, gp.get_status()),
            KIC,
            KID,
        )
        mos = lab.route_message([command_user_data(packet)])
        return lab.decode(mos[0].payload).status

    plus_one = Spi(counter=CounterMode.PLUS_ONE)
    assert send(plus_one, 12) is PorStatus.COUNTER_HIGH
    assert send(plus_one, 11) is PorStatus.OK
    assert card.keys[1].counter == 11
    # MSL 12 (CC + counter higher): a packet without counter check is below it
    assert send(Spi(counter=CounterMode.NOT_CHECKED), 5) is PorStatus.INSUFFICIENT_SECURITY_LEVEL


def test_keyset_algorithm_mismatch_is_a_security_error(lab: Lab) -> None:
    packet = encode_command(
        SecuredCommandPacket(PROFILE.spi, 0x15, 0x15, RAM_TAR, 1, gp.get_status()), KIC, KID
    )
    mos = lab.route_message([command_user_data(packet)])
    assert lab.decode(mos[0].payload).status is PorStatus.UNIDENTIFIED_SECURITY_ERROR


def test_expanded_script() -> None:
    lab = make_lab()
    install(lab)
    script = expanded_command_script([gp.get_status(0x20), gp.get_status(0x40, aid=b"\xd0" * 5)])
    packet = encode_command(
        SecuredCommandPacket(PROFILE.spi, PROFILE.kic, PROFILE.kid, RAM_TAR, 99, script), KIC, KID
    )
    por = lab.decode(lab.route_message([command_user_data(packet)])[0].payload)
    response = parse_expanded_response(por.additional_data)
    assert response.executed == 2
    assert response.rapdus[0][-2:] == b"\x90\x00"
    assert response.rapdus[1] == b"\x6a\x88"


def test_script_stops_at_the_first_error(lab: Lab) -> None:
    install(lab)
    apdus = (gp.get_status(0x40, aid=b"\xd0" * 5), gp.delete(sa.PACKAGE_AID, related_objects=True))
    (por,) = lab.direct(AppletCommands(RAM_TAR, apdus))
    result = parse_compact_result(por.additional_data)
    assert (result.executed, result.sw) == (1, 0x6A88)
    assert sa.PACKAGE_AID in lab.card.load_files


def test_out_of_memory_gives_6a84_and_leaves_nothing() -> None:
    lab = make_lab(memory_quota=1000)
    pors = install(lab)
    results = [parse_compact_result(p.additional_data) for p in pors]
    assert all(p.status is PorStatus.OK for p in pors)
    assert 0x6A84 in [r.sw for r in results]
    assert lab.card.load_files == {} and lab.card.used_memory == 0
    # declared code size in INSTALL [for load] is checked at once
    cap = parse_cap(sync_cap())
    apdu = gp.install_for_load(cap.package_aid, non_volatile_code_size=5000)
    (por,) = lab.direct(AppletCommands(RAM_TAR, (apdu,)))
    assert parse_compact_result(por.additional_data).sw == 0x6A84


def test_install_errors() -> None:
    lab = make_lab()
    install(lab)
    cap = parse_cap(sync_cap())
    cases = [
        (gp.install_for_load(sa.PACKAGE_AID), 0x6985),  # already loaded
        (gp.install_for_install(sa.PACKAGE_AID, b"\xd0" * 8, b"\xd1" * 8), 0x6A88),
        (gp.install_for_install(sa.PACKAGE_AID, sa.APPLET_AID, sa.INSTANCE_AID), 0x6985),
        (
            gp.install_for_install(
                sa.PACKAGE_AID,
                sa.APPLET_AID,
                b"\xd1" * 8,
                install_parameters=sa.install_parameters(),
            ),
            0x6A80,
        ),  # TAR already taken
        (gp.load_blocks(b"\xc4\x01\x00", 3)[0], 0x6985),  # LOAD without INSTALL [for load]
        (gp.delete(sa.PACKAGE_AID), 0x6985),  # has an instance, no "related objects"
        (gp.delete(b"\xd0" * 5), 0x6A88),
        (bytes.fromhex("80AA000000"), 0x6D00),
    ]
    for apdu, sw in cases:
        (por,) = lab.direct(AppletCommands(RAM_TAR, (apdu,)))
        assert parse_compact_result(por.additional_data).sw == sw, apdu.hex()
    # LOAD blocks out of sequence
    lfdb = cap.load_file_data_block().data
    other = bytes.fromhex("A0000005591099")
    (por,) = lab.direct(
        AppletCommands(RAM_TAR, (gp.install_for_load(other), gp.load_blocks(lfdb, 200)[1]))
    )
    assert parse_compact_result(por.additional_data).sw == 0x6A86
    # a load file whose package AID is not the one announced
    blocks = gp.load_blocks(lfdb, 200)
    for n, apdu in enumerate([gp.install_for_load(other), *blocks]):
        (por,) = lab.direct(AppletCommands(RAM_TAR, (apdu,)))
        sw = parse_compact_result(por.additional_data).sw
        assert sw == (0x6A80 if n == len(blocks) else 0x9000)
    assert other not in lab.card.load_files


def test_delete_with_related_objects(lab: Lab) -> None:
    install(lab)
    (por,) = lab.direct(Delete(sa.PACKAGE_AID, related_objects=True))
    assert parse_compact_result(por.additional_data).sw == 0x9000
    assert lab.card.load_files == {} and lab.card.instances == {}
    assert sa.TAR not in lab.card.known_tars()
    (por,) = lab.direct(AppletCommands(sa.TAR, (sa.read_summary_apdu(),)))
    assert por.status is PorStatus.TAR_UNKNOWN
    # reinstall works: the memory came back
    assert all(parse_compact_result(p.additional_data).sw == 0x9000 for p in install(lab))


def test_delete_instance_only(lab: Lab) -> None:
    install(lab)
    (por,) = lab.direct(Delete(sa.INSTANCE_AID, related_objects=False))
    assert parse_compact_result(por.additional_data).sw == 0x9000
    assert lab.card.instances == {} and sa.PACKAGE_AID in lab.card.load_files


# --- The sync applet ----------------------------------------------------------------------------


def test_store_read_trigger(lab: Lab) -> None:
    install(lab)
    seen = []
    lab.router.set_proactive_hook(lambda card, issued: seen.append((card, issued)))
    record = bytes.fromhex("3082012C") + bytes(range(256)) + b"https://sync.example/ds"
    # a record bigger than a packet: one STORE per packet, as the planner cuts it
    from cardmgmt.ota.planner import StoreData

    pors = lab.direct(StoreData(sa.TAR, record))
    assert len(pors) >= 2
    assert all(parse_compact_result(p.additional_data).sw == 0x9000 for p in pors)
    _, result = lab.applet(sa.read_summary_apdu())
    summary = sa.parse_summary(result.data)
    assert summary.state is RecordState.STORED and summary.matches(record)
    chunks = b""
    for n in range(-(-len(record) // sa.READ_CHUNK_SIZE)):
        _, result = lab.applet(sa.read_chunk_apdu(n))
        chunks += result.data
    assert chunks == record
    _, result = lab.applet(sa.read_chunk_apdu(50))
    assert result.sw == 0x6A88

    _, result = lab.applet(sa.trigger_apdu(sa.SyncMode.SLOW, "spring-2026"))
    assert result.sw == 0x9000 and result.data == b"\x00\x01"
    (issued,) = lab.card.issued_commands
    assert issued.record == record and issued.mode == 1 and issued.campaign == b"spring-2026"
    assert issued.instance_aid == sa.INSTANCE_AID
    assert sa.decode_sync_request(issued.command) == issued.request
    assert issued.request.reason is TriggerReason.OTA
    assert seen == [(lab.card, issued)]
    _, result = lab.applet(sa.trigger_apdu())
    assert lab.card.issued_commands[-1].mode is None
    assert sa.parse_summary(lab.applet(sa.read_summary_apdu())[1].data).triggers == 2


def test_applet_refusals(lab: Lab) -> None:
    install(lab)
    _, result = lab.applet(sa.trigger_apdu())
    assert result.sw == 0x6985  # no record yet
    assert lab.card.issued_commands == []
    store = sa.store_record_apdus(b"x" * 30, block_size=10)
    _, result = lab.applet(store[0], store[2])  # block 2 after block 0
    assert (result.executed, result.sw) == (2, 0x6A86)
    _, result = lab.applet(store[0])
    summary = sa.parse_summary(lab.applet(sa.read_summary_apdu())[1].data)
    assert summary.state is RecordState.UPLOADING and summary.next_block == 1
    _, result = lab.applet(bytes.fromhex("80B0000000"))
    assert result.sw == 0x6D00
    _, result = lab.applet(b"\x80\xe2")  # not even a header
    assert result.sw == 0x6700


def test_record_quota_from_install_parameters() -> None:
    lab = make_lab()
    install(lab, install_params=sa.install_parameters(non_volatile_quota=100))
    assert lab.card.free_memory == 65536 - lab.card.load_files[sa.PACKAGE_AID].size - 100
    _, result = lab.applet(*sa.store_record_apdus(b"y" * 101, block_size=60))
    assert result.sw == 0x6A84
    _, result = lab.applet(*sa.store_record_apdus(b"y" * 100, block_size=60))
    assert result.sw == 0x9000


# --- Failure injection, delivery paths ---------------------------------------------------------


def test_toolkit_busy_is_undeliverable_and_no_por(lab: Lab) -> None:
    lab.router.inject(MSISDN, toolkit_busy=1)
    (message,) = lab.secure(Audit())
    with pytest.raises(Undeliverable) as info:
        lab.route_message(message.user_data)
    assert info.value.err == 0xD4
    assert lab.card.keys[1].counter == 0  # the card never saw the packet
    (por,) = lab.direct(Audit())  # the retry, with a fresh counter
    assert por.status is PorStatus.OK


def test_lost_por(lab: Lab) -> None:
    lab.router.inject(MSISDN, lose_por=1)
    (message,) = lab.secure(Audit())
    assert lab.route_message(message.user_data) == []
    assert lab.card.history[-1].por_lost and lab.card.history[-1].status is PorStatus.OK
    assert lab.card.keys[1].counter == message.cntr  # executed nonetheless


def test_segments_out_of_order_and_duplicated(lab: Lab) -> None:
    cap = parse_cap(sync_cap())
    messages = lab.secure(LoadAndInstall(cap, install_params=sa.install_parameters()))
    for message in messages:
        parts = list(message.user_data)
        order = parts[::-1] + parts[:1] if len(parts) > 1 else parts
        mos = lab.route_message(order)
        assert len(mos) == 1
        assert lab.decode(mos[0].payload).status is PorStatus.OK
    assert sa.INSTANCE_AID in lab.card.instances


def test_unknown_msisdn_and_non_ota_messages(lab: Lab) -> None:
    with pytest.raises(Undeliverable) as info:
        lab.router.route(OTA_ADDRESS, "+1555", 0x40, 0x7F, 0xF6, b"\x02\x70\x00")
    assert info.value.err == 1
    (message,) = lab.secure(Audit())
    ud = message.user_data[0]
    assert lab.router.route(OTA_ADDRESS, MSISDN, 0x40, 0x00, 0xF6, ud) == []  # PID 00
    assert lab.router.route(OTA_ADDRESS, MSISDN, 0x40, 0x7F, 0x04, ud) == []  # no class 2
    assert lab.card.keys[1].counter == 0
    assert lab.router.stats.not_for_card == 2
    # garbage with the CPI: the card refuses the download (RP-ERROR, TP-FCS D5)
    with pytest.raises(Undeliverable) as info:
        lab.router.route(OTA_ADDRESS, MSISDN, 0x40, 0x7F, 0x16, b"\x02\x70\x00\x00\x05abc")
    assert info.value.err == 0xD5


def test_por_in_rp_ack_is_not_sent_as_mo(lab: Lab) -> None:
    spi = Spi.parse("1619")  # PoR via SMS-DELIVER-REPORT
    packet = encode_command(
        SecuredCommandPacket(spi, PROFILE.kic, PROFILE.kid, RAM_TAR, 1, gp.get_status()), KIC, KID
    )
    assert lab.route_message([command_user_data(packet)]) == []
    assert lab.router.stats.por_in_rp_ack == 1


def test_state_round_trip(tmp_path) -> None:
    lab = make_lab()
    install(lab)
    lab.applet(*sa.store_record_apdus(b"state-record"))
    lab.applet(sa.trigger_apdu())
    lab.router.save(tmp_path / "state.json")
    fresh = make_card()
    router = FleetRouter([fresh])
    router.load_state(tmp_path / "state.json")
    assert fresh.keys[1].counter == lab.card.keys[1].counter
    assert set(fresh.load_files) == {sa.PACKAGE_AID}
    assert fresh.instances[sa.INSTANCE_AID].tars == (sa.TAR,)
    applet = fresh.applet()
    assert applet is not None and applet.record == b"state-record" and applet.triggers == 1


def test_keys_are_never_printed() -> None:
    keys = CardKeys(1, "aes128", KIC, KID)
    assert KIC.hex() not in repr(keys).lower() and KIC.hex() not in repr(make_card()).lower()


def test_card_refuses_keys_its_profile_does_not_support() -> None:
    with pytest.raises(ValueError):
        Uicc(iccid="1", msisdn="1", keysets=[CardKeys(1, "3des2", KIC, KID)])
    with pytest.raises(ValueError):
        CardKeys(1, "aes128", KIC[:8], KID)
