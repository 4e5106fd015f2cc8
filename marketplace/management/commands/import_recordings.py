"""Import a session's takes from a folder and its CSV manifest.

    python manage.py import_recordings DIR --performer EMAIL \\
        [--manifest PATH] [--sign-consent "Full Legal Name" --consent-version V]
    python manage.py import_recordings --show-consent

Exit codes: 0 every row imported (or was already imported), 1 some rows were
refused, 2 nothing was imported (manifest refused, unknown performer, bad
consent signature, missing folder). The manifest format is docs/manifest.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.management.base import BaseCommand, CommandError
from django.urls import NoReverseMatch, reverse
from tqdm import tqdm

from accounts.models import PerformerProfile
from core.errors import ApplicationError
from marketplace.models import ImportBatch, ImportRow
from marketplace.services import consent_text_current
from marketplace.services.imports import (
    files_without_rows,
    import_batch_counts,
    import_batch_start,
    import_row_attach_file,
    import_row_refuse,
    import_rows,
)

# Files in DIR that look like media but are not in the manifest are named in
# the report (other files, such as notes or the manifest itself, are not).
MEDIA_SUFFIXES = {
    ".wav",
    ".flac",
    ".mp3",
    ".ogg",
    ".oga",
    ".opus",
    ".mp4",
    ".m4a",
    ".webm",
    ".mov",
    ".mkv",
    ".aif",
    ".aiff",
}
EXIT_REFUSED_ROWS = 1
EXIT_NOTHING_IMPORTED = 2
STATUS_TEXT = {
    ImportRow.Status.PENDING: "pending",
    ImportRow.Status.IMPORTED: "imported",
    ImportRow.Status.ALREADY_IMPORTED: "already imported",
    ImportRow.Status.REFUSED: "refused",
}


class Command(BaseCommand):
    help = (
        "Import recordings from DIR as described by a CSV manifest (DIR/manifest.csv by "
        "default). Each row is imported on its own: a bad row never blocks the others, and "
        "running the same import again adds nothing twice."
    )

    def add_arguments(self, parser):
        parser.add_argument("directory", nargs="?", help="The folder holding the media files.")
        parser.add_argument(
            "--performer", help="Email address of the performer the recordings belong to."
        )
        parser.add_argument(
            "--manifest", help="Path of the CSV manifest (default: DIR/manifest.csv)."
        )
        parser.add_argument(
            "--sign-consent",
            metavar="FULL_LEGAL_NAME",
            default="",
            help="Sign the consent text for every recording of the batch with the "
            "performer's full legal name. Without it, recordings are imported without "
            "consent and each needs consent on its page.",
        )
        parser.add_argument(
            "--consent-version",
            default="",
            help="The version of the consent text being signed; it must be the current one "
            "(see --show-consent).",
        )
        parser.add_argument(
            "--show-consent",
            action="store_true",
            help="Print the current consent text and its version, then stop.",
        )
        parser.add_argument(
            "--no-progress", action="store_true", help="Do not draw the progress bar."
        )

    def handle(self, *args, **options):
        if options["show_consent"]:
            text = consent_text_current()
            self.stdout.write(f"Consent text version {text.version} (sha256 {text.sha256})\n")
            self.stdout.write(text.body)
            self.stdout.write(
                f'\nTo sign it for a batch: --sign-consent "Full Legal Name" '
                f"--consent-version {text.version}"
            )
            return

        directory, performer = self._check_arguments(options)
        manifest_path = Path(options["manifest"] or directory / "manifest.csv")
        if not manifest_path.is_file():
            raise CommandError(
                f"There is no manifest at {manifest_path}.", returncode=EXIT_NOTHING_IMPORTED
            )
        user = performer.user
        try:
            with manifest_path.open("rb") as manifest:
                batch = import_batch_start(
                    performer=performer,
                    by=user,
                    manifest_file=manifest,
                    manifest_name=manifest_path.name,
                    source=ImportBatch.Source.COMMAND,
                    signature_name=options["sign_consent"],
                    consent_text_version=options["consent_version"],
                    user_agent="manage.py import_recordings",
                )
        except ApplicationError as exc:
            fields = exc.details.get("fields", {})
            what = (
                "The consent signature was refused"
                if "signature_name" in fields or "consent_text_version" in fields
                else "The manifest was refused"
            )
            raise CommandError(
                f"{what} ({exc.code}); nothing was imported. {exc.message}",
                returncode=EXIT_NOTHING_IMPORTED,
            ) from None

        pending = list(batch.rows.filter(status=ImportRow.Status.PENDING).order_by("row_number"))
        bar = tqdm(
            pending,
            desc="Importing",
            unit="file",
            file=options.get("stderr") or sys.stderr,
            disable=options["no_progress"],
            dynamic_ncols=True,
        )
        outcomes = {"imported": 0, "refused": 0}
        for row in bar:
            bar.set_postfix_str(row.file_name[:40], refresh=False)
            path = directory / row.file_name
            if not path.is_file():
                row = import_row_refuse(
                    row=row,
                    code="file_missing",
                    message=f"row {row.row_number}, file_name: “{row.file_name}” is not in "
                    f"{directory}",
                    by=user,
                )
            else:
                # Opened on its path, so the media checks read it in place and
                # the storage streams it: the file is never read into memory.
                with path.open("rb") as handle:
                    row = import_row_attach_file(
                        row=row, file=File(handle, name=str(path)), by=user
                    )
            key = "refused" if row.status == ImportRow.Status.REFUSED else "imported"
            outcomes[key] += 1
            bar.set_postfix(outcomes, refresh=False)
        bar.close()

        self._print_table(batch)
        counts = import_batch_counts(batch)
        extra = files_without_rows(batch, self._media_names(directory))
        if extra:
            self.stdout.write(
                self.style.WARNING(
                    f"{len(extra)} file(s) in {directory} are not in the manifest and were "
                    f"skipped: {', '.join(extra[:10])}{' …' if len(extra) > 10 else ''}"
                )
            )
        unsigned = not options["sign_consent"].strip()
        if unsigned and counts[ImportRow.Status.IMPORTED]:
            self.stdout.write(
                self.style.WARNING(
                    "No consent was signed for this batch: give consent on each imported "
                    "recording's page before listing it."
                )
            )
        summary = (
            f"{counts['total']} row(s): {counts[ImportRow.Status.IMPORTED]} imported, "
            f"{counts[ImportRow.Status.ALREADY_IMPORTED]} already imported, "
            f"{counts[ImportRow.Status.REFUSED]} refused. Batch {batch.pk}: "
            f"{self._batch_url(batch)}"
        )
        if counts[ImportRow.Status.REFUSED]:
            self.stdout.write(self.style.ERROR(summary))
            raise CommandError(
                f"{counts[ImportRow.Status.REFUSED]} row(s) were refused; see the table above.",
                returncode=EXIT_REFUSED_ROWS,
            )
        self.stdout.write(self.style.SUCCESS(summary))

    def _check_arguments(self, options) -> tuple[Path, PerformerProfile]:
        if not options["directory"]:
            raise CommandError(
                "Name the folder holding the files: import_recordings DIR --performer EMAIL.",
                returncode=EXIT_NOTHING_IMPORTED,
            )
        directory = Path(options["directory"]).expanduser()
        if not directory.is_dir():
            raise CommandError(f"{directory} is not a folder.", returncode=EXIT_NOTHING_IMPORTED)
        if not options["performer"]:
            raise CommandError(
                "Say whose recordings these are: --performer EMAIL.",
                returncode=EXIT_NOTHING_IMPORTED,
            )
        email = options["performer"].strip()
        performer = (
            PerformerProfile.objects.select_related("user")
            .filter(user__email__iexact=email)
            .first()
        )
        if performer is None:
            raise CommandError(
                f"No performer has the email address {email}.", returncode=EXIT_NOTHING_IMPORTED
            )
        if options["sign_consent"].strip() and not options["consent_version"].strip():
            version = consent_text_current().version
            raise CommandError(
                "--sign-consent needs --consent-version: read the text with --show-consent, "
                f"then sign version {version}.",
                returncode=EXIT_NOTHING_IMPORTED,
            )
        return directory, performer

    def _print_table(self, batch: ImportBatch) -> None:
        rows = list(import_rows(batch))
        width_row = max(len("row"), *(len(str(r.row_number)) for r in rows))
        width_file = min(40, max(len("file"), *(len(r.file_name) for r in rows)))
        width_status = max(len(s) for s in STATUS_TEXT.values())
        self.stdout.write("")
        self.stdout.write(
            f"{'row':>{width_row}}  {'file':<{width_file}}  {'status':<{width_status}}  message"
        )
        self.stdout.write(f"{'-' * width_row}  {'-' * width_file}  {'-' * width_status}  -------")
        styles = {
            ImportRow.Status.IMPORTED: self.style.SUCCESS,
            ImportRow.Status.ALREADY_IMPORTED: self.style.WARNING,
            ImportRow.Status.REFUSED: self.style.ERROR,
        }
        for row in rows:
            name = row.file_name or "(none)"
            if len(name) > width_file:
                name = name[: width_file - 1] + "…"
            status = STATUS_TEXT[row.status]
            styled = styles.get(row.status, str)(f"{status:<{width_status}}")
            message = row.message.replace(f"row {row.row_number}, ", "")
            self.stdout.write(
                f"{row.row_number:>{width_row}}  {name:<{width_file}}  {styled}  {message}"
            )
        self.stdout.write("")

    @staticmethod
    def _media_names(directory: Path) -> list[str]:
        return [
            p.name
            for p in directory.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in MEDIA_SUFFIXES
        ]

    @staticmethod
    def _batch_url(batch: ImportBatch) -> str:
        try:
            path = reverse("recording_import_detail", args=[batch.pk])
        except NoReverseMatch:
            path = f"/recordings/imports/{batch.pk}/"
        return settings.SITE_URL.rstrip("/") + path
