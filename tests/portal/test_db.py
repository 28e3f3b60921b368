"""portal.db: planner settings scoped to a block of statements."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from portal.db import planner_settings

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="planner settings are PostgreSQL's (CI runs it)"
)


def show(cursor, name: str) -> str:  # type: ignore[no-untyped-def]
    cursor.execute(f"SHOW {name}")
    return cursor.fetchone()[0]


@pytest.mark.django_db
def test_settings_hold_inside_the_block_and_are_reset_after():
    with transaction.atomic(), connection.cursor() as cursor:
        with planner_settings(cursor, enable_sort="off", jit="off"):
            assert (show(cursor, "enable_sort"), show(cursor, "jit")) == ("off", "off")
        assert show(cursor, "enable_sort") == "on"
