"""Database helpers shared by the apps."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def planner_settings(cursor: Any, **settings: str) -> Iterator[None]:
    """PostgreSQL planner settings (`enable_sort="off"`, ...) for the statements `cursor` runs
    inside, in the current transaction (SET LOCAL), reset on the way out. Not after an error:
    the transaction is rolled back, the settings with it, and a RESET would only fail again
    and hide the first error."""
    cursor.execute("; ".join(f"SET LOCAL {name} = {value}" for name, value in settings.items()))
    yield
    cursor.execute("; ".join(f"RESET {name}" for name in settings))
