"""A PostgreSQL database of its own for a benchmark, next to DATABASE_URL's, made before
Django starts (the benchmark then runs against it) and dropped at the end."""

from __future__ import annotations

import os
import sys

import environ
import psycopg
from psycopg import sql


class BenchDatabase:
    def __init__(self, suffix: str) -> None:
        base = environ.Env.db_url_config(
            os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal")
        )
        if "postgresql" not in base["ENGINE"]:
            sys.exit("this benchmark needs DATABASE_URL on PostgreSQL")
        self.name = f"{base['NAME']}_{suffix}"
        self.params = {
            "host": base["HOST"] or "127.0.0.1",
            "port": base["PORT"] or 5432,
            "user": base["USER"] or "postgres",
        }

    def _admin(self, statement: str) -> None:
        with psycopg.connect(dbname="postgres", autocommit=True, **self.params) as conn:
            conn.execute(sql.SQL(statement).format(sql.Identifier(self.name)))

    def create(self) -> None:
        """Make it afresh and point DATABASE_URL at it (call before django.setup())."""
        self.drop()
        self._admin("CREATE DATABASE {}")
        os.environ["DATABASE_URL"] = (
            f"postgres://{self.params['user']}@{self.params['host']}:{self.params['port']}/"
            f"{self.name}"
        )

    def drop(self) -> None:
        self._admin("DROP DATABASE IF EXISTS {} WITH (FORCE)")
