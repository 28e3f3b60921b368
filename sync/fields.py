"""A list of strings stored natively where the database can: a PostgreSQL array, or JSON text
on the embedded SQLite setup (`make run`). Only whole-list reads and writes are used."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.postgres.fields import ArrayField


class StringListField(ArrayField):
    def db_type(self, connection) -> str:  # type: ignore[no-untyped-def]
        if connection.vendor == "postgresql":
            return super().db_type(connection)
        return "text"

    def cast_db_type(self, connection) -> str:  # type: ignore[no-untyped-def]
        if connection.vendor == "postgresql":
            return super().cast_db_type(connection)
        return "text"

    def get_placeholder(self, value: Any, compiler, connection) -> str:  # type: ignore[no-untyped-def]
        # ArrayField casts its placeholder (`%s::text[]`), which SQLite cannot parse.
        if connection.vendor == "postgresql":
            return super().get_placeholder(value, compiler, connection)
        return "%s"

    def get_db_prep_value(self, value: Any, connection, prepared: bool = False) -> Any:  # type: ignore[no-untyped-def]
        if connection.vendor == "postgresql":
            return super().get_db_prep_value(value, connection, prepared)
        return None if value is None else json.dumps(list(value))

    def from_db_value(self, value: Any, expression, connection) -> Any:  # type: ignore[no-untyped-def]
        if isinstance(value, str):
            return json.loads(value)
        return value
