from django.conf import settings
from django.core.management.base import BaseCommand

from cardmgmt import services
from portal.context import Actor


class Command(BaseCommand):
    help = "Re-seal every stored secret under the current master key (MASTER_KEY_VERSION)."

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        changed = services.reseal_secrets(actor=Actor.command("reseal_secrets"))
        self.stdout.write(
            f"re-sealed {changed} key set(s) under master key version {settings.MASTER_KEY_VERSION}"
        )
