from __future__ import annotations

import secrets

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from portal import services
from portal.context import Actor
from portal.roles import ROLE_NAMES


class Command(BaseCommand):
    help = "Create a user with a role (administrator, operator, support, auditor)."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=ROLE_NAMES)
        parser.add_argument("--password", help="Default: a random one, printed once.")
        parser.add_argument("--email", default="")

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        password = options["password"] or secrets.token_urlsafe(12)
        try:
            services.create_user_with_role(
                actor=Actor.command("create_user"),
                username=options["username"],
                role=options["role"],
                password=password,
                email=options["email"],
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        self.stdout.write(f"created {options['role']} {options['username']}")
        if not options["password"]:
            self.stdout.write(f"password: {password}")
