"""DESIGN 4a reconciliation rules, on the pure merge module."""

from __future__ import annotations

from sync.merge import (
    content_hash,
    is_twin,
    merge_three_way,
    normalized_keys,
    parse_contact,
    project,
)


def v(*lines: str) -> dict:
    return parse_contact(
        "BEGIN:VCARD\r\nVERSION:3.0\r\n" + "\r\n".join(lines) + "\r\nEND:VCARD\r\n"
    )


BASE = v("N:Doe;Jo", "FN:Jo Doe", "TEL:+491701111111", "EMAIL:jo@example.org", "NOTE:base")


def test_one_sided_changes_take_that_side() -> None:
    client = v("N:Doe;Jo", "FN:Jo Doe", "TEL:+491701111111", "EMAIL:jo@example.org", "NOTE:client")
    server = v(
        "N:Doe;Jo",
        "FN:Jo Doe",
        "TEL:+491701111111",
        "EMAIL:jo@example.org",
        "NOTE:base",
        "TITLE:Dr",
    )
    merged, conflicts = merge_three_way(BASE, server, client)
    assert merged["NOTE"] == "client" and merged["TITLE"] == "Dr" and not conflicts


def test_both_changed_policy_decides_and_loser_is_logged_not_concatenated() -> None:
    client = {**BASE, "NOTE": "client"}
    server = {**BASE, "NOTE": "server"}
    merged, conflicts = merge_three_way(BASE, server, client, policy="merge")
    assert merged["NOTE"] == "client"
    assert conflicts[0].server_value == "server" and conflicts[0].resolution == "client_won"
    merged, conflicts = merge_three_way(BASE, server, client, policy="server_wins")
    assert merged["NOTE"] == "server" and conflicts[0].resolution == "server_won"
    assert merge_three_way(BASE, server, client, policy="client_wins")[0]["NOTE"] == "client"


def test_sets_merge_against_the_shadow_not_as_a_union() -> None:
    # Handset edits the number (remove + add), server adds an e-mail.
    client = {**BASE, "TEL": [{"v": "+491702222222", "t": []}]}
    server = {**BASE, "EMAIL": BASE["EMAIL"] + [{"v": "JO@WORK.example", "t": []}]}
    merged, _ = merge_three_way(BASE, server, client)
    assert [t["v"] for t in merged["TEL"]] == ["+491702222222"]  # the old number stays gone
    assert {e["v"].lower() for e in merged["EMAIL"]} == {"jo@example.org", "jo@work.example"}


def test_reformatted_value_is_not_a_change() -> None:
    client = {**BASE, "TEL": [{"v": "0170 1111111", "t": ["CELL"]}]}
    assert content_hash(client) == content_hash(BASE)
    merged, conflicts = merge_three_way(BASE, BASE, client)
    assert len(merged["TEL"]) == 1 and not conflicts


def test_fields_the_handset_cannot_hold_are_kept() -> None:
    server = {**BASE, "TITLE": "Dr", "URL": [{"v": "https://jo.example", "t": []}]}
    supported = frozenset({"N", "FN", "TEL", "EMAIL", "NOTE"})
    shown = project(server, supported)
    assert "TITLE" not in shown and "URL" not in shown
    merged, _ = merge_three_way(project(BASE, supported), server, {**shown, "NOTE": "new"},
                                supported=supported)  # fmt: skip
    assert merged["TITLE"] == "Dr" and merged["URL"] and merged["NOTE"] == "new"


def test_twins_need_name_and_phone_or_email() -> None:
    a = normalized_keys(v("FN:Carol White", "TEL:0170 2222222"))
    b = normalized_keys(v("FN:carol  white", "TEL:+49 170 2222222"))
    c = normalized_keys(v("FN:Carol White", "EMAIL:other@example.org"))
    assert is_twin(a, b) and not is_twin(a, c)
    assert not is_twin(normalized_keys(v("FN:Dan Green", "TEL:+491703")),
                       normalized_keys(v("FN:Daniel Green", "TEL:+491703")))  # fmt: skip
