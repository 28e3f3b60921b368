"""Say which configured service (database, broker) is unreachable and how to start it."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

HOW_TO_START = {
    "postgresql": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "redis": "redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save '' "
    "--appendonly no",
    "amqp": "rabbitmq-server -detached",
}


class Command(BaseCommand):
    help = "Check that the database and the Celery broker answer."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument(
            "--create-database",
            action="store_true",
            help="Create the PostgreSQL database when the server has none",
        )

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        problems = []
        if options["create_database"] and connection.vendor == "postgresql":
            self._create_database()
        try:
            connection.ensure_connection()
            self.stdout.write(f"database: ok ({connection.vendor})")
        except Exception as exc:
            hint = HOW_TO_START.get(connection.vendor, "")
            problems.append(
                f"database {settings.DATABASES['default'].get('HOST') or ''} is not "
                f"reachable ({exc.__class__.__name__}: {exc}). Start it: {hint}"
            )
        from portal.celery import app

        broker = settings.CELERY_BROKER_URL
        try:
            with app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=3)
            self.stdout.write(f"broker: ok ({broker.split('://')[0]})")
        except Exception as exc:
            scheme = broker.split("://")[0]
            problems.append(
                f"broker {scheme} is not reachable ({exc.__class__.__name__}). "
                f"Start it: {HOW_TO_START.get(scheme, '')}"
            )
        if problems:
            raise CommandError("\n".join(problems))

    def _create_database(self) -> None:
        import psycopg
        from psycopg import sql

        db = settings.DATABASES["default"]
        params = {
            "host": db.get("HOST") or None,
            "port": db.get("PORT") or None,
            "user": db.get("USER") or None,
            "password": db.get("PASSWORD") or None,
        }
        try:
            with psycopg.connect(
                dbname="postgres",
                autocommit=True,
                connect_timeout=3,
                **{k: v for k, v in params.items() if v},
            ) as conn:
                exists = conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]
                ).fetchone()
                if not exists:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db["NAME"])))
                    self.stdout.write(f"database {db['NAME']} created")
        except psycopg.OperationalError:
            pass  # reported by the reachability check below
