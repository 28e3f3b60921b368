"""Secured-packet encode rate per core, beside the raw rate of the same cipher and MAC calls.

Each packet is a 100-octet payload with ciphering, a CC and a counter (SPI 1639), under keys of
its own (every card has its own keys), so both loops build fresh cipher and MAC objects for every
packet. The raw loop makes exactly the `cryptography` calls the codec must make, on the same
octets; the codec's overhead (headers, padding, checks) is what the ratio shows. Target: the
codec reaches 90% of the raw rate.

Two codec figures: `encode_command`, one call per packet (what a single-card operation pays),
and `encode_commands`, one call per batch of same-shape packets (SPI, KIc, KID, TAR), which is
how campaigns secure packets (cardmgmt/services/bulk.py). Both take prebuilt inputs (packet
objects, or (cntr, data, kic_key, kid_key) tuples) and the same fresh keys per packet; the raw
loop is the same in both comparisons.

Run: .venv/bin/python benchmarks/bench_ota.py
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from cryptography.hazmat.primitives.ciphers.algorithms import AES
from cryptography.hazmat.primitives.cmac import CMAC

from benchmarks.figures import Figure, print_figures
from cardmgmt.ota import KeyAlgorithm, SecuredCommandPacket, Spi, encode_command, encode_commands

PACKETS = 1000  # per batch
ROUNDS = 60  # batches per loop, alternating raw and codec; the fastest batch of each counts
PAYLOAD = bytes(range(100))
TAR = bytes.fromhex("B00010")
SPI = Spi.parse("1639")


def _inputs(
    alg: KeyAlgorithm,
) -> tuple[list[SecuredCommandPacket], list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
    """Packets, their keys, and for the raw loop the MAC input and clear body of each packet."""
    kic = 0x10 | alg
    packets, keys, raw_inputs = [], [], []
    for n in range(PACKETS):
        k = (os.urandom(16), os.urandom(16))
        p = SecuredCommandPacket(SPI, kic, kic, TAR, n + 1, PAYLOAD)
        block = 16 if alg is KeyAlgorithm.AES else 8
        pad = -(6 + 8 + len(PAYLOAD)) % block
        header = (14 + 8 + len(PAYLOAD) + pad).to_bytes(2, "big") + bytes((21,)) + SPI.raw
        header += bytes((kic, kic)) + TAR
        counter = (n + 1).to_bytes(5, "big") + bytes((pad,))
        data = PAYLOAD + bytes(pad)
        packets.append(p)
        keys.append(k)
        raw_inputs.append((header + counter + data, counter + bytes(8) + data))
    return packets, keys, raw_inputs


_CBC16 = modes.CBC(bytes(16))
_CBC8 = modes.CBC(bytes(8))


def raw_aes(keys: list[tuple[bytes, bytes]], inputs: list[tuple[bytes, bytes]]) -> None:
    for (kic_key, kid_key), (mac_input, body) in zip(keys, inputs, strict=True):
        mac = CMAC(AES(kid_key))
        mac.update(mac_input)
        mac.finalize()
        Cipher(AES(kic_key), _CBC16).encryptor().update(body)


def raw_3des(keys: list[tuple[bytes, bytes]], inputs: list[tuple[bytes, bytes]]) -> None:
    for (kic_key, kid_key), (mac_input, body) in zip(keys, inputs, strict=True):
        # 2-key 3DES as K1|K2|K1; the CBC-MAC input zero-padded to 8 (ISO 9797-1 method 1)
        pad = -len(mac_input) % 8
        Cipher(TripleDES(kid_key + kid_key[:8]), _CBC8).encryptor().update(mac_input + bytes(pad))[
            -8:
        ]
        Cipher(TripleDES(kic_key + kic_key[:8]), _CBC8).encryptor().update(body)


def codec(packets: list[SecuredCommandPacket], keys: list[tuple[bytes, bytes]]) -> None:
    for packet, (kic_key, kid_key) in zip(packets, keys, strict=True):
        encode_command(packet, kic_key, kid_key)


def codec_batch(packets: list[SecuredCommandPacket], items: list[tuple]) -> None:
    first = packets[0]
    encode_commands(first.spi, first.kic, first.kid, first.tar, items)


def _best_rate(fn, *args) -> float:
    # CPU time of this process: a rate per core that other work on the machine does not
    # dilute; short batches and the best of many keep interference out of both figures.
    start = time.process_time()
    fn(*args)
    return PACKETS / (time.process_time() - start)


def measure(alg: KeyAlgorithm, raw_fn) -> tuple[float, float]:
    packets, keys, inputs = _inputs(alg)
    raw_fn(keys, inputs)  # warm up
    items = [(p.cntr, p.data, *k) for p, k in zip(packets, keys, strict=True)]
    codec(packets, keys)
    codec_batch(packets, items)
    raw_rates, codec_rates, batch_rates = [], [], []
    for _ in range(ROUNDS):  # interleaved small batches, best of each: all see the same noise
        raw_rates.append(_best_rate(raw_fn, keys, inputs))
        codec_rates.append(_best_rate(codec, packets, keys))
        batch_rates.append(_best_rate(codec_batch, packets, items))
    return max(raw_rates), max(codec_rates), max(batch_rates)


def main() -> None:
    figures = []
    for label, alg, raw_fn, note in (
        ("AES-128 CBC + AES-CMAC", KeyAlgorithm.AES, raw_aes, "AES-CBC encryptor + CMAC"),
        (
            "3DES 2-key CBC + CBC-MAC",
            KeyAlgorithm.TDES_2KEY,
            raw_3des,
            "two TripleDES CBC encryptors",
        ),
    ):
        raw, single, batch = measure(alg, raw_fn)
        for name, rate in (
            (f"encode_command {label}, 100 B, fresh keys, one call per packet", single),
            (
                f"encode_commands {label}, 100 B, fresh keys, batches of {PACKETS} (campaigns)",
                batch,
            ),
        ):
            figures.append(
                Figure(
                    name=name,
                    value=rate,
                    unit="packets/s",
                    target=0.9 * raw,
                    peer=f"raw {note} on the same octets: {raw:,.0f}/s; "
                    f"codec = {rate / raw:.1%} of raw",
                )
            )
    print_figures("OTA secured packets, one core", figures)


if __name__ == "__main__":
    main()
