"""SyncMessage keeps the request bytes (compressed, credentials blanked) instead of two XML
renderings written on every message; the logs are rendered on display. Contacts get an index
for slow-sync pairing by normalised name."""

import zlib

from django.db import migrations, models


def keep_old_logs(apps, schema_editor):
    # Earlier rows hold only the redacted XML rendering: keep it as the stored request.
    SyncMessage = apps.get_model("sync", "SyncMessage")
    for m in SyncMessage.objects.exclude(request_log="").only("pk", "request_log").iterator():
        SyncMessage.objects.filter(pk=m.pk).update(
            request=zlib.compress(m.request_log.encode("utf-8"), 1)
        )


class Migration(migrations.Migration):
    dependencies = [
        ("cardmgmt", "0004_sealed_scripts"),
        ("sync", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="syncmessage",
            name="request",
            field=models.BinaryField(default=b"", editable=False),
        ),
        migrations.RunPython(keep_old_logs, migrations.RunPython.noop),
        migrations.RemoveField(model_name="syncmessage", name="request_log"),
        migrations.RemoveField(model_name="syncmessage", name="response_log"),
        migrations.AddIndex(
            model_name="contact",
            index=models.Index(fields=["subscriber", "name_norm"], name="contact_sub_name"),
        ),
    ]
