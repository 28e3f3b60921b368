"""Beat's database schedule gets the campaigns' watchdog (every 5 s, expiring)."""

from django.db import migrations


def add(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every, _ = IntervalSchedule.objects.get_or_create(every=5, period="seconds")
    PeriodicTask.objects.update_or_create(
        name="campaigns-revive-runs",
        defaults={
            "task": "campaigns.revive_runs",
            "interval": every,
            "queue": "campaigns",
            "expire_seconds": 10,
            "description": "Restart the progress refresh of campaign runs whose task was lost",
        },
    )


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        name="campaigns-revive-runs"
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(add, remove)]
