from __future__ import annotations

import datetime

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from portal import services
from portal.context import Actor


class Command(BaseCommand):
    help = "Create an API token for a user and print its key (shown this once)."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("username")
        parser.add_argument("--name", required=True)
        parser.add_argument("--write", action="store_true", help="Allow writes (default read-only)")
        parser.add_argument("--days", type=int, default=0, help="Expire after N days (0: never)")

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"no user {options['username']!r}")
        expires = (
            timezone.now() + datetime.timedelta(days=options["days"])
            if options["days"] > 0
            else None
        )
        try:
            _token, key = services.create_api_token(
                actor=Actor.command("create_api_token"),
                user=user,
                name=options["name"],
                write_enabled=options["write"],
                expires=expires,
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        self.stdout.write(key)
