"""The engine with many items per message (COPY path, pairing by GUID prefix) and the number
of queries a session costs: the figures of docs/sync.md ("Performance") stay locked in."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from sync.merge import content_hash, normalized_keys
from sync.models import Contact, HeldDelete, ItemMap
from sync.simclient import MESSAGE_OVERHEAD, SimClient, message_batches
from sync.syncml import Add, Item, Location, Meta, Sync, SyncHdr, SyncML, serialize_message

URL = "http://testserver/syncml"
ODD_EMAIL = 'Odd"Quote\\Back,slash{x}@Example.org'


def card(i: int, email: str = "") -> str:
    return (
        f"BEGIN:VCARD\r\nVERSION:3.0\r\nN:Person{i};Bulk\r\nFN:Bulk Person{i}\r\n"
        f"TEL;TYPE=CELL:+49170{i:07d}\r\nEMAIL:{email or f'p{i}@example.org'}\r\nEND:VCARD\r\n"
    )


@pytest.fixture
def counted(client: Client):
    """A post() that records how many queries each message cost."""
    per_message: list[int] = []

    def send(body: bytes, ctype: str, url: str) -> tuple[int, bytes]:
        with CaptureQueriesContext(connection) as ctx:
            response = client.post(url.replace("http://testserver", ""), data=body,
                                   content_type=ctype)  # fmt: skip
        per_message.append(len(ctx.captured_queries))
        return response.status_code, response.content

    send.per_message = per_message  # type: ignore[attr-defined]
    return send


def live(profile) -> list[Contact]:  # type: ignore[no-untyped-def]
    return list(Contact.objects.filter(subscriber=profile.subscriber, deleted=False))


def test_refresh_from_client_of_many_items(counted, profile, secret):  # type: ignore[no-untyped-def]
    phone = SimClient(post=counted, url=URL, username=profile.username, password=secret,
                      max_msg_size=1024 * 1024)  # fmt: skip
    phone.sync(201)
    adds = {str(i): card(i, ODD_EMAIL if i == 7 else "") for i in range(250)}
    out = phone.sync(203, adds=adds)
    assert out["alert"] == 203
    rows = {c.guid: c for c in live(profile)}
    assert len(rows) == 250
    odd = next(c for c in rows.values() if c.display_name == "Bulk Person7")
    assert odd.emails_norm == [ODD_EMAIL.lower()]  # the array literal survives quoting
    assert odd.phones_norm == ["+491700000007"]
    assert len({c.seq for c in rows.values()}) == 250
    # The rows this session created carry its GUID prefix.
    assert len({g[:20] for g in rows}) == 1
    maps = {m.luid: m for m in ItemMap.objects.filter(state__device__subscriber=profile.subscriber)}
    assert sorted(maps, key=int) == [str(i) for i in range(250)]
    for luid, m in maps.items():
        row = rows[m.guid]
        assert row.fields["FN"] == f"Bulk Person{luid}"
        assert m.shadow_hash == content_hash(row.fields)
        name, phones, emails = normalized_keys(row.fields)
        assert (row.name_norm, row.phones_norm, row.emails_norm) == (name, phones, emails)
    # Nothing new for the handset afterwards, and a second refresh pairs instead of adding.
    again = phone.sync(200)
    assert (again["alert"], again["received"]) == (200, 0)
    for luid in range(200, 250):  # the handset lost 50 of them
        del phone.items[str(luid)]
    phone.sync(203)
    after = {c.guid for c in live(profile)}
    assert len(after) == 200 and after <= set(rows)  # 50 deleted (not a mass delete)
    assert not HeldDelete.objects.exists()


def test_items_in_a_message_do_not_add_queries(counted, profile, secret):  # type: ignore[no-untyped-def]
    def package3_queries(n: int) -> list[int]:
        Contact.objects.all().delete()  # each handset starts from an empty address book
        phone = SimClient(post=counted, url=URL, username=profile.username, password=secret,
                          dev_id=f"IMEI:35000000000{n:04d}", max_msg_size=1024 * 1024)  # fmt: skip
        phone.sync(201)
        counted.per_message.clear()
        phone.sync(203, adds={f"{n}-{i}": card(i) for i in range(n)})
        return counted.per_message[1:-1]  # the Sync message(s), between Alert and Map

    few, many = package3_queries(30), package3_queries(190)
    assert len(few) == len(many) == 1
    assert many == few


def test_queries_of_a_two_way_session_without_changes(counted, profile, secret):  # type: ignore[no-untyped-def]
    phone = SimClient(post=counted, url=URL, username=profile.username, password=secret)
    phone.sync(201, adds={"1": card(1)})
    phone.sync(200)
    counted.per_message.clear()
    assert phone.sync(200)["alert"] == 200
    # package 1, package 3, package 5, as Django counts them (savepoints included)
    assert counted.per_message == [9, 5, 6]


@pytest.mark.parametrize("server_max", [8 * 1024, 64 * 1024])
def test_the_simulated_handset_fills_messages_to_the_servers_max_msg_size(server_max):  # type: ignore[no-untyped-def]
    """Package 3 cut as a real client cuts it: as few messages as the server's MaxMsgSize
    allows, each within it once written (CRs escaped, header and markup included)."""
    adds = [Add(cmd_id=str(i + 10), meta=Meta(type="text/vcard"),
                items=[Item(source=Location(loc_uri=str(i)), data=card(i) * (1 + i % 5))])
            for i in range(600)]  # fmt: skip
    batches = message_batches(adds, server_max)
    assert [a for b in batches for a in b] == adds  # all of them, in order, once
    hdr = SyncHdr(ver_dtd="1.2", ver_proto="SyncML/1.2", session_id="1", msg_id="2",
                  target=Location(loc_uri=URL), source=Location(loc_uri="IMEI:490154203237518"),
                  meta=Meta(max_msg_size=1024 * 1024))  # fmt: skip
    sizes = []
    for batch in batches:
        sync = Sync(cmd_id="3", target=Location(loc_uri="contacts"),
                    source=Location(loc_uri="./contacts"), commands=batch)  # fmt: skip
        sizes.append(len(serialize_message(SyncML(hdr=hdr, final=True, commands=[sync]))))
    assert max(sizes) <= server_max
    full = sizes[:-1]  # filled, not cut short (room is kept for the header and statuses)
    assert sum(full) / len(full) > (server_max - MESSAGE_OVERHEAD) * 0.8
    assert message_batches([], server_max) == [[]]
