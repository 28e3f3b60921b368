"""The operator portal: Django project, Celery app, people, roles, audit log and API shell."""

from portal.celery import app as celery_app

__all__ = ["celery_app"]
