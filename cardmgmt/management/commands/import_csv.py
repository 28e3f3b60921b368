from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.management.base import BaseCommand, CommandError

from cardmgmt import services
from cardmgmt.choices import ImportKind, ImportStatus
from portal.context import Actor


class Command(BaseCommand):
    help = (
        "Import a card manufacturer output file or a subscriber list (CSV). The whole file "
        "is validated first; nothing is imported if any line is bad."
    )

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("kind", choices=ImportKind.values)
        parser.add_argument("path", type=Path)
        parser.add_argument(
            "--background",
            action="store_true",
            help="Queue the job for a worker instead of running it here",
        )

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        path: Path = options["path"]
        if not path.is_file():
            raise CommandError(f"no such file: {path}")
        actor = Actor.command(f"import_csv {options['kind']}")
        try:
            with path.open("rb") as stream:
                upload = UploadedFile(stream, name=path.name, size=path.stat().st_size)
                job = services.create_import_job(actor=actor, kind=options["kind"], upload=upload)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        job = services.start_import_job(actor=actor, job=job, inline=not options["background"])
        if options["background"]:
            self.stdout.write(f"queued import job {job.pk}")
            return
        for error in job.errors:
            self.stderr.write(
                f"line {error['line']}, column {error['column'] or '-'}: {error['message']}"
            )
        if job.status != ImportStatus.DONE:
            raise CommandError(job.message or job.status)
        self.stdout.write(f"import job {job.pk}: {job.message}")
