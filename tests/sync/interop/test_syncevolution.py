"""SyncEvolution 2.0.0 (a real, independent SyncML client) against the server in the tests.

After every sync the handset's folder and DB2 must hold the same items, compared one by one
in normalised form. The full {1.1, 1.2} x {XML, WBXML} x {basic, MD5} x {vCard 2.1, 3.0}
matrix runs a slow sync and a two-way sync with changes on both sides; the modes and the
special cases run on two combinations.
"""

from __future__ import annotations

import base64
import itertools
import os
import signal
import subprocess
import threading

import pytest

from sync.merge import content_hash, parse_contact
from sync.models import Contact, HeldDelete, SyncSession, SyncState
from tests.sync.interop.conftest import SYNCEVOLUTION, Handset

pytestmark = [pytest.mark.interop, pytest.mark.django_db(transaction=True)]

ALICE = "BEGIN:VCARD\nVERSION:3.0\nN:Liddell;Alice\nFN:Alice Liddell\nTEL;TYPE=CELL:+49 170 1000001\nEMAIL:alice@example.org\nEND:VCARD\n"
BOB = "BEGIN:VCARD\nVERSION:3.0\nN:Builder;Bob\nFN:Bob Builder\nTEL;TYPE=HOME:030 1234567\nNOTE:Zweite Zeile: Müller\nEND:VCARD\n"
CAROL = "BEGIN:VCARD\nVERSION:3.0\nN:White;Carol\nFN:Carol White\nEMAIL;TYPE=WORK:carol@example.org\nEND:VCARD\n"


def handset(tmp_path, live_server, curlfix, profile, secret, n=1, **kw) -> Handset:  # type: ignore[no-untyped-def]
    h = Handset(
        home=tmp_path / f"handset{n}",
        curlfix=curlfix,
        url=live_server.url + "/syncml",
        username=profile.username,
        password=secret,
        device_id=f"IMEI:35693803564{3800 + n:04d}",
        **kw,
    )
    h.configure()
    return h


def db2(profile) -> list[str]:  # type: ignore[no-untyped-def]
    rows = Contact.objects.filter(subscriber=profile.subscriber, deleted=False)
    return sorted(content_hash(c.fields) for c in rows)


def folder(h: Handset) -> list[str]:
    return sorted(content_hash(parse_contact(text)) for text in h.cards().values())


def assert_same(h: Handset, profile) -> None:  # type: ignore[no-untyped-def]
    client, server = folder(h), db2(profile)
    assert len(client) == len(server), f"handset has {len(client)} items, DB2 {len(server)}"
    assert client == server, "handset folder and DB2 differ"


def server_add(profile, vcard: str) -> Contact:  # type: ignore[no-untyped-def]
    from portal.context import Actor
    from sync import services

    return services.save_contact(actor=Actor.command("tests"), subscriber=profile.subscriber,
                                 vcard=vcard)  # fmt: skip


def last_session(profile) -> SyncSession:  # type: ignore[no-untyped-def]
    return SyncSession.objects.filter(profile=profile).order_by("-started", "-id").first()


MATRIX = list(itertools.product(("1.1", "1.2"), (False, True), ("basic", "md5"), ("2.1", "3.0")))


@pytest.mark.parametrize(
    ("version", "wbxml", "auth", "vcard"),
    MATRIX,
    ids=[f"{v}-{'wbxml' if w else 'xml'}-{a}-vcard{c}" for v, w, a, c in MATRIX],
)
def test_matrix_two_way(
    tmp_path, live_server, curlfix, profile, secret, version, wbxml, auth, vcard
):  # type: ignore[no-untyped-def]
    h = handset(tmp_path, live_server, curlfix, profile, secret, version=version, wbxml=wbxml,
                auth=auth, vcard=vcard)  # fmt: skip
    h.write("alice.vcf", ALICE)
    server_add(profile, BOB)
    h.sync("slow")
    assert last_session(profile).status == "completed"
    assert_same(h, profile)
    assert len(db2(profile)) == 2
    # Changes on both sides, then a two-way sync.
    h.write("carol.vcf", CAROL)
    server_add(
        profile,
        "BEGIN:VCARD\nVERSION:3.0\nN:Dodo;Dan\nFN:Dan Dodo\nTEL:+44 20 7946 0000\nEND:VCARD\n",
    )
    h.sync("two-way")
    session = last_session(profile)
    assert session.status == "completed"
    assert session.modes == {"contacts": 200}
    assert (session.client_added, session.server_added) == (1, 1)
    assert_same(h, profile)
    assert len(db2(profile)) == 4


COMBOS = [("1.2", True, "md5", "3.0"), ("1.1", False, "basic", "2.1")]
COMBO_IDS = ["1.2-wbxml-md5-3.0", "1.1-xml-basic-2.1"]


@pytest.fixture(params=COMBOS, ids=COMBO_IDS)
def phone(request, tmp_path, live_server, curlfix, profile, secret) -> Handset:  # type: ignore[no-untyped-def]
    version, wbxml, auth, vcard = request.param
    return handset(tmp_path, live_server, curlfix, profile, secret, version=version, wbxml=wbxml,
                   auth=auth, vcard=vcard)  # fmt: skip


def test_modes(phone, profile):  # type: ignore[no-untyped-def]
    h = phone
    h.write("alice.vcf", ALICE)
    server_add(profile, BOB)
    h.sync("slow")
    assert_same(h, profile)
    # one-way from client: the handset's new item reaches DB2, DB2's stays on the server.
    h.write("carol.vcf", CAROL)
    dan = server_add(profile, "BEGIN:VCARD\nVERSION:3.0\nN:Dodo;Dan\nFN:Dan Dodo\nEND:VCARD\n")
    h.sync("one-way-from-client")
    assert last_session(profile).modes == {"contacts": 202}
    assert len(db2(profile)) == 4 and len(h.cards()) == 3
    # one-way from server: now DB2's change arrives.
    h.sync("one-way-from-server")
    # SyncEvolution 2.0 emulates one-way-from-server: it alerts 200 and keeps its own changes.
    assert last_session(profile).modes in ({"contacts": 204}, {"contacts": 200})
    assert_same(h, profile)
    # refresh from server: the handset's folder is replaced by DB2.
    (h.folder / "carol.vcf").unlink()
    h.sync("refresh-from-server")
    # SyncEvolution 2.0 wipes its folder and runs a slow sync (alert 201) for this mode.
    assert last_session(profile).modes in ({"contacts": 205}, {"contacts": 201})
    assert_same(h, profile)
    # refresh from client: DB2 becomes the folder (one deletion, within the guard).
    for name, text in h.cards().items():
        if "Dodo" in text:
            (h.folder / name).unlink()
    h.sync("refresh-from-client")
    assert last_session(profile).modes == {"contacts": 203}
    assert_same(h, profile)
    assert Contact.objects.get(pk=dan.pk).deleted
    # two-way with nothing to do.
    h.sync("two-way")
    s = last_session(profile)
    assert s.modes == {"contacts": 200} and s.status == "completed"
    assert (s.client_added, s.server_added, s.server_replaced) == (0, 0, 0)
    assert_same(h, profile)


def test_conflict_on_both_sides(phone, profile):  # type: ignore[no-untyped-def]
    h = phone
    h.write("alice.vcf", ALICE)
    h.sync("slow")
    contact = Contact.objects.get(subscriber=profile.subscriber, deleted=False)
    # Handset: new phone number (an edit); server: an extra e-mail and a new title.
    name = next(iter(h.cards()))
    text = h.cards()[name]
    h.write(name, text.replace("1000001", "1000099"))
    from portal.context import Actor
    from sync import services

    server_version = ALICE.replace(
        "END:VCARD", "EMAIL:a.liddell@example.com\nTITLE:Explorer\nEND:VCARD"
    )
    services.save_contact(actor=Actor.command("tests"), subscriber=profile.subscriber,
                          vcard=server_version, contact=contact)  # fmt: skip
    h.sync("two-way")
    assert_same(h, profile)
    contact.refresh_from_db()
    tels = [t["v"] for t in contact.fields["TEL"]]
    emails = {e["v"] for e in contact.fields["EMAIL"]}
    assert tels == ["+49 170 1000099"], "the edited number replaces the old one (set semantics)"
    assert emails == {"alice@example.org", "a.liddell@example.com"}
    assert contact.fields["TITLE"] == "Explorer"


def test_large_object_photo(phone, profile):  # type: ignore[no-untyped-def]
    h = phone
    h.max_msg_size = 10240
    h.configure()
    photo = base64.b64encode(os.urandom(21 * 1024)).decode()
    card = ("BEGIN:VCARD\nVERSION:3.0\nN:Photo;Pia\nFN:Pia Photo\nPHOTO;ENCODING=b;TYPE=JPEG:"
            + photo + "\nEND:VCARD\n")  # fmt: skip
    h.write("pia.vcf", card)
    h.sync("slow")
    assert_same(h, profile)
    stored = Contact.objects.get(subscriber=profile.subscriber)
    assert base64.b64decode(stored.fields["PHOTO"]["data"]) == base64.b64decode(photo)
    # And back: a second handset gets the photo in chunks.
    other = last_session(profile)
    assert other.messages.count() >= 4  # the 21 KB item needed several messages


def test_large_object_photo_from_the_server(phone, profile):  # type: ignore[no-untyped-def]
    """A >10 KB PHOTO created on the server reaches a handset with a small MaxMsgSize in
    chunks (MoreData, Size on the first, 213 from the handset) and arrives byte for byte."""
    from sync.messagelog import render_response

    h = phone
    h.max_msg_size = 10240  # SyncEvolution's minimum
    h.configure()
    photo = os.urandom(16 * 1024)  # ~22 KB as base64
    server_add(profile, "BEGIN:VCARD\nVERSION:3.0\nN:Photo;Paul\nFN:Paul Photo\n"
               f"PHOTO;ENCODING=b;TYPE=JPEG:{base64.b64encode(photo).decode()}\nEND:VCARD\n")  # fmt: skip
    h.sync("slow")
    assert_same(h, profile)
    (text,) = h.cards().values()
    assert base64.b64decode(parse_contact(text)["PHOTO"]["data"]) == photo
    session = last_session(profile)
    assert session.server_added == 1 and session.status == "completed"
    replies = [render_response(bytes(m.response)) for m in session.messages.all()]
    assert sum("<MoreData/>" in r for r in replies) >= 2  # at least three chunks
    # Acknowledged: the next two-way sync sends nothing.
    h.sync("two-way")
    assert last_session(profile).server_added == 0
    assert_same(h, profile)


def test_wrong_password_gets_401(phone, profile):  # type: ignore[no-untyped-def]
    h = phone
    h.password = "wrong-password"
    h.configure()
    proc = h.sync("two-way", check=False)
    assert proc.returncode != 0
    assert (
        "401" in proc.stdout + proc.stderr
        or "authentication" in (proc.stdout + proc.stderr).lower()
    )
    from sync.models import AuthFailure

    assert AuthFailure.objects.filter(username=profile.username, reason="wrong password").exists()
    assert not SyncSession.objects.filter(profile=profile).exists()


def test_forced_slow_sync_508(phone, profile):  # type: ignore[no-untyped-def]
    h = phone
    h.write("alice.vcf", ALICE)
    server_add(profile, BOB)
    h.sync("slow")
    # The server loses its anchors (restored backup): the next two-way sync must be slow.
    SyncState.objects.update(client_anchor="lost")
    h.write("carol.vcf", CAROL)
    h.sync("two-way")
    s = last_session(profile)
    assert s.modes == {"contacts": 201}
    assert "<Data>508</Data>" in s.messages.first().response_log
    assert_same(h, profile)
    assert len(db2(profile)) == 3, "a slow sync never duplicates"


def test_client_disappears_after_sending_changes(phone, profile, monkeypatch):  # type: ignore[no-untyped-def]
    h = phone
    h.write("alice.vcf", ALICE)
    h.sync("slow")
    state_before = SyncState.objects.get()
    h.write("carol.vcf", CAROL)
    server_add(profile, BOB)

    from sync import endpoint

    real = endpoint.engine.handle_request
    proc_box: dict = {}

    def vanish(body, **kw):  # type: ignore[no-untyped-def]
        reply = real(body, **kw)
        if b"Carol" in body and "proc" in proc_box:
            # The changes are applied and answered; the handset dies before reading it.
            os.killpg(proc_box["proc"].pid, signal.SIGKILL)
        return reply

    monkeypatch.setattr(endpoint.engine, "handle_request", vanish)
    proc = subprocess.Popen(
        [SYNCEVOLUTION, "--daemon=no", "--sync", "two-way", "phone", "addressbook"],
        env=h.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    proc_box["proc"] = proc
    threading.Timer(90, lambda: proc.poll() is None and os.killpg(proc.pid, signal.SIGKILL)).start()
    proc.wait()
    assert proc.returncode != 0
    monkeypatch.setattr(endpoint.engine, "handle_request", real)
    aborted = last_session(profile)
    assert aborted.status == "active"
    state = SyncState.objects.get()
    assert (state.client_anchor, state.last_seq) == (
        state_before.client_anchor,
        state_before.last_seq,
    ), "anchors not advanced"
    assert len(db2(profile)) == 3  # Carol applied once
    # The next session resends Carol: nothing is applied twice and both sides agree.
    h.sync("two-way")
    assert last_session(profile).status == "completed"
    assert len(db2(profile)) == 3
    assert_same(h, profile)


def test_mass_delete_is_held(phone, profile):  # type: ignore[no-untyped-def]
    h = phone
    for i in range(8):
        h.write(
            f"p{i}.vcf",
            f"BEGIN:VCARD\nVERSION:3.0\nN:Person{i};P\nFN:P Person{i}\nTEL:+4917010000{i:02d}\nEND:VCARD\n",
        )
    h.sync("slow")
    for p in list(h.folder.iterdir())[:6]:
        p.unlink()
    h.sync("two-way")
    assert len(db2(profile)) == 8, "the deletions wait for review"
    held = HeldDelete.objects.get()
    assert len(held.guids) == 6 and held.status == "pending"
