"""Handset simulator tests run without Django (`pytest tests/handset -p no:django`)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
for path in (HERE.parents[1], HERE):  # the repository, and this folder for `handset_lab`
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from handset_lab import Lab, make_lab  # noqa: E402


@pytest.fixture
def lab() -> Lab:
    return make_lab()
