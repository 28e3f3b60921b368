"""A large import runs in a real Celery worker on the broker, with visible progress."""

from __future__ import annotations

import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction

from cardmgmt import services
from cardmgmt.choices import ImportStatus
from cardmgmt.models import Card, ImportJob, KeySet
from portal.context import Actor
from tests.cardmgmt.csvdata import card_csv
from tests.conftest import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_task_enqueued_on_commit_runs_in_the_worker(card_profile, celery_worker):
    content, _ = card_csv(30)
    with transaction.atomic():
        job = services.create_import_job(
            actor=Actor.command("tests"), kind="cards", upload=SimpleUploadedFile("c.csv", content)
        )
        services.start_import_job(actor=Actor.command("tests"), job=job, inline=False)
        time.sleep(1.0)
        # Not sent before the commit: the worker cannot have seen the job yet.
        assert ImportJob.objects.get(pk=job.pk).status == ImportStatus.QUEUED
    done = wait_for(lambda: ImportJob.objects.filter(pk=job.pk, status="done").first(), 30)
    assert done.created_count == 30
    assert Card.objects.count() == 30
    assert done.requested_by == "tests"
    from portal.models import AuditEntry

    entry = AuditEntry.objects.get(action="import", object_id=str(job.pk))
    assert entry.actor_kind == "task" and entry.actor_label == "cardmgmt.run_import_job"


def test_large_upload_through_the_ui_shows_progress(card_profile, make_user, celery_worker, client):
    user = make_user("operator")
    client.force_login(user)
    content, _ = card_csv(60_000)
    response = client.post(
        "/inventory/imports/add/", {"kind": "cards", "file": SimpleUploadedFile("big.csv", content)}
    )
    assert response.status_code == 302
    job = ImportJob.objects.get()
    seen: set[tuple[str, int]] = set()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        current = ImportJob.objects.get(pk=job.pk)
        seen.add((current.status, current.percent))
        if current.is_finished:
            break
        page = client.get(f"/inventory/imports/{job.pk}/", HTTP_HX_REQUEST="true")
        assert page.status_code == 200 and b"progress-bar" in page.content
        time.sleep(0.05)
    assert current.status == ImportStatus.DONE, current.message
    assert current.created_count == 60_000 and KeySet.objects.count() == 60_000
    intermediate = {p for status, p in seen if 0 < p < 100}
    assert intermediate, f"no intermediate progress observed: {sorted(seen)}"
