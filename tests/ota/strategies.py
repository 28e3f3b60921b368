"""Hypothesis strategies shared by the OTA property and fuzz tests."""

from __future__ import annotations

from hypothesis import strategies as st

from cardmgmt.ota import (
    COUNTER_MAX,
    CounterMode,
    KeyAlgorithm,
    PorRequest,
    RcAlgorithm,
    Security,
    Spi,
)

# (algorithm code, key length) for ciphering and CC
CIPHERS = [
    (KeyAlgorithm.DES_CBC, 8),
    (KeyAlgorithm.TDES_2KEY, 16),
    (KeyAlgorithm.TDES_3KEY, 24),
    (KeyAlgorithm.DES_ECB, 8),
    (KeyAlgorithm.AES, 16),
    (KeyAlgorithm.AES, 24),
    (KeyAlgorithm.AES, 32),
]
MACS = [c for c in CIPHERS if c[0] is not KeyAlgorithm.DES_ECB]


@st.composite
def setups(draw: st.DrawFn) -> tuple[Spi, int, int, bytes, bytes, int]:
    """(spi, kic, kid, kic_key, kid_key, cmac_length) for any SPI the package supports.

    One KID serves the command and its PoR, so both use the same kind of checksum (RC or CC)
    when they use one.
    """
    kind = draw(st.sampled_from([Security.RC, Security.CC]))
    spi = Spi(
        security=draw(st.sampled_from([Security.NONE, kind])),
        ciphering=draw(st.booleans()),
        counter=draw(st.sampled_from(list(CounterMode))),
        por=draw(st.sampled_from(list(PorRequest))),
        por_security=draw(st.sampled_from([Security.NONE, kind])),
        por_ciphering=draw(st.booleans()),
        por_via_submit=draw(st.booleans()),
    )
    kvn = draw(st.integers(1, 15))
    c_alg, c_len = draw(st.sampled_from(CIPHERS))
    m_alg, m_len = draw(st.sampled_from(MACS))
    kic = (kvn << 4) | c_alg
    if kind is Security.RC:
        kid = (kvn << 4) | draw(st.sampled_from(list(RcAlgorithm)))
    else:
        kid = (kvn << 4) | m_alg
    kic_key = draw(st.binary(min_size=c_len, max_size=c_len))
    kid_key = draw(st.binary(min_size=m_len, max_size=m_len))
    return spi, kic, kid, kic_key, kid_key, draw(st.sampled_from([4, 8]))


counters = st.integers(0, COUNTER_MAX)
tars = st.binary(min_size=3, max_size=3)
