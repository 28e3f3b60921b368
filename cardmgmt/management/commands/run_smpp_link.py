"""Run the SMPP link process: one long-lived bind per enabled SMSC link."""

from __future__ import annotations

import asyncio
import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from cardmgmt.models import SmscLink
from cardmgmt.smpplink import LinkRunner


def rate_limiter_for(link: SmscLink):  # type: ignore[no-untyped-def]
    """Shared through Redis when there is one, so several link processes keep the TPS."""
    url = settings.OTA_RATE_LIMIT_REDIS_URL
    if not url:
        return None
    from cardmgmt.ratelimit import RedisTokenBucket

    return RedisTokenBucket(url, f"smpp-tps:{link.name}", link.tps)


class Command(BaseCommand):
    help = "Bind to the configured SMSC links and send queued OTA messages until stopped."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--link", action="append", help="Only this link (repeatable)")
        parser.add_argument(
            "--wait",
            action="store_true",
            help="Wait for a link to be configured instead of exiting",
        )

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        asyncio.run(self._main(options["link"], options["wait"]))

    async def _main(self, names: list[str] | None, wait: bool) -> None:
        from asgiref.sync import sync_to_async

        def load() -> list[SmscLink]:
            links = SmscLink.objects.filter(enabled=True)
            return list(links.filter(name__in=names) if names else links)

        links = await sync_to_async(load)()
        while not links and wait:
            await asyncio.sleep(5)
            links = await sync_to_async(load)()
        if not links:
            raise CommandError("no enabled SMSC link is configured")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        runners = [LinkRunner(link, rate_limiter=rate_limiter_for(link)) for link in links]
        self.stdout.write(f"running links: {', '.join(link.name for link in links)}")
        try:
            await asyncio.gather(*(runner.run(stop) for runner in runners))
        finally:
            # The Redis buckets' connections, closed while their event loop still runs.
            for runner in runners:
                close = getattr(runner.rate_limiter, "close", None)
                if close is not None:
                    await close()
