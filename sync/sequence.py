"""The change sequence of DB2: every change to a contact or inventory item takes the next
number, so "changed since the last session" is `seq > last_seq`.

PostgreSQL has a real sequence (`sync_change_seq`); the embedded SQLite setup keeps the
counter in a one-row table, advanced with UPDATE ... RETURNING (SQLite serialises writers).
"""

from __future__ import annotations

from django.db import connection

SQLITE_TABLE = "sync_change_seq_counter"


def create_sequence(apps, schema_editor) -> None:  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("CREATE SEQUENCE IF NOT EXISTS sync_change_seq")
    else:
        schema_editor.execute(
            f"CREATE TABLE IF NOT EXISTS {SQLITE_TABLE} (id integer PRIMARY KEY, value bigint)"
        )
        schema_editor.execute(
            f"INSERT INTO {SQLITE_TABLE} (id, value) VALUES (1, 0) ON CONFLICT (id) DO NOTHING"
        )


def drop_sequence(apps, schema_editor) -> None:  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP SEQUENCE IF EXISTS sync_change_seq")
    else:
        schema_editor.execute(f"DROP TABLE IF EXISTS {SQLITE_TABLE}")


def next_change_seqs(n: int) -> list[int]:
    """`n` new sequence numbers, increasing."""
    if n <= 0:
        return []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT nextval('sync_change_seq') FROM generate_series(1, %s)", [n])
            return [row[0] for row in cursor.fetchall()]
        cursor.execute(
            f"UPDATE {SQLITE_TABLE} SET value = value + %s WHERE id = 1 RETURNING value", [n]
        )
        last = cursor.fetchone()[0]
        return list(range(last - n + 1, last + 1))
