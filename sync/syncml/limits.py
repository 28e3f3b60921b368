"""Hard limits applied by every decoder of outside input."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Bounds for decoding untrusted input.

    ``max_bytes`` caps the input size, ``max_depth`` the element nesting and
    ``max_elements`` the total number of elements (embedded documents included).
    """

    max_bytes: int = 4 * 1024 * 1024
    max_depth: int = 48
    max_elements: int = 100_000


DEFAULT_LIMITS = Limits()
