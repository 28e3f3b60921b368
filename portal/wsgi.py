"""WSGI entry point (gunicorn and other WSGI servers: `gunicorn portal.wsgi`)."""

import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
application = get_wsgi_application()

# Import every view now (Django would on the first request), then move what start-up built
# into the collector's permanent generation: a full collection would otherwise walk the
# several hundred thousand objects of Django and the apps on every run, and a SyncML message
# of a thousand items allocates enough to trigger several. On a refresh of 1,008 vCards this
# is 40% of the request's time (docs/sync.md, "Performance").
get_resolver().url_patterns  # noqa: B018
gc.collect()
gc.freeze()
