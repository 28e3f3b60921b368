"""Builders of CSV import files for the tests."""

from __future__ import annotations

import random

from cardmgmt.validators import luhn_check_digit

HEADER = "ICCID,IMSI,PROFILE,ALG1,KIC1,KID1,KIK1"


def iccid(n: int) -> str:
    body = f"8949002{n:011d}"
    return body + str(luhn_check_digit(body))


def card_rows(count: int, start: int = 1, profile: str = "Test AES", seed: int = 1):
    """(line text, keys) for `count` cards with AES-128 keys."""
    rng = random.Random(seed + start)
    rows = []
    for n in range(start, start + count):
        keys = [rng.randbytes(16).hex().upper() for _ in range(3)]
        rows.append(
            (f"{iccid(n)},26202{n:010d},{profile},aes128,{keys[0]},{keys[1]},{keys[2]}", keys)
        )
    return rows


def card_csv(count: int, start: int = 1, profile: str = "Test AES") -> tuple[bytes, list[str]]:
    rows = card_rows(count, start, profile)
    text = HEADER + "\n" + "\n".join(line for line, _ in rows) + "\n"
    return text.encode(), [k for _, keys in rows for k in keys]
