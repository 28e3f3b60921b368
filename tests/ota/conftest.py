"""Fixtures for the OTA protocol tests: the public vectors, copied into the project."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def vectors() -> dict:
    return json.loads((DATA / "ota_public.json").read_text())
