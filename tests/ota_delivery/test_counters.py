"""OTA counters: allocated atomically per (card, KVN), never twice, under many processes."""

from __future__ import annotations

import multiprocessing

import pytest
from django.conf import settings

from cardmgmt.models import KeySet
from tests.ota_delivery.counter_worker import allocate_many

pytestmark = pytest.mark.django_db(transaction=True)

PROCESSES = 8
PER_PROCESS = 1250  # 10,000 in all


def test_eight_processes_never_share_a_counter(card):
    db = settings.DATABASES["default"]
    url = (
        f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}"
    )
    context = multiprocessing.get_context("spawn")
    with context.Pool(PROCESSES) as pool:  # a fresh interpreter each: real concurrency
        results = pool.map(allocate_many, [(url, card.pk, 1, PER_PROCESS)] * PROCESSES)
    values = [v for chunk in results for v in chunk]
    assert len(values) == PROCESSES * PER_PROCESS
    assert len(set(values)) == len(values), "a counter value was handed out twice"
    assert sorted(values) == list(range(1, PROCESSES * PER_PROCESS + 1))
    assert KeySet.objects.get(card=card, kvn=1).counter == PROCESSES * PER_PROCESS
    # Each process saw its own values strictly increasing.
    assert all(chunk == sorted(chunk) for chunk in results)


def test_unknown_kvn_is_refused(card):
    from django.core.exceptions import ValidationError

    from cardmgmt.services import allocate_counter

    with pytest.raises(ValidationError, match="no key set with KVN 9"):
        allocate_counter(card_id=card.pk, kvn=9)
