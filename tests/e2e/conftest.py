"""The `stack` fixture: the whole system on loopback (tests/e2e/stack.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.stack import Stack


@pytest.fixture
def stack(transactional_db, live_server, celery_worker, tmp_path) -> Iterator[Stack]:
    """A fresh `Stack` (not yet provisioned): call `stack.provision()`."""
    whole = Stack(live_server.url, celery_worker, tmp_path)
    try:
        yield whole
    finally:
        whole.close()
