"""The Celery application shared by every worker, the scheduler and the web tier."""

import gc
import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.task_prerun.connect
def _drop_unusable_connections(**_kwargs: object) -> None:
    """Workers keep their database connection across tasks (CELERY_DB_REUSE_MAX): drop one
    that broke or outlived CONN_MAX_AGE before the next task, as Django does per request.
    Not inside a transaction (a task applied by a caller that holds one, as tests do): that
    connection is the caller's, and closing it would end the caller's transaction."""
    from django.db import close_old_connections, connection

    if connection.in_atomic_block:
        return
    close_old_connections()


@signals.worker_process_init.connect
def _freeze_start_up_objects(**_kwargs: object) -> None:
    """As portal/wsgi.py does for the web tier: what the pool process inherited (Django, the
    apps, Celery) goes to the collector's permanent generation, so the full collections that
    a chunk of thousands of targets triggers walk only the objects tasks made."""
    gc.collect()
    gc.freeze()
