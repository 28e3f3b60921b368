"""Run in a spawned process: no Django import before `django.setup()`."""

from __future__ import annotations

import os


def allocate_many(args: tuple[str, int, int, int]) -> list[int]:
    database_url, card_id, kvn, count = args
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from cardmgmt.services import allocate_counter

    return [allocate_counter(card_id=card_id, kvn=kvn) for _ in range(count)]
