"""Build recordings' previews here and now, by hand.

    python manage.py rebuild_previews                 # every preview not ready
    python manage.py rebuild_previews --all           # every preview, ready ones too
    python manage.py rebuild_previews --recording REC-… [--recording REC-…]

Beat already sends the preview task again for previews left pending
(``recording_previews_resend_task``); this command is for the cases it does
not cover: previews given up on, failed media after a fix to the preview
code, or every preview after a change of preview format (``--all``).
Previews are built in this process, one after another; the site keeps
serving the old preview of a recording until its new one is stored.

Exit codes: 0 every preview built, 1 some failed (they are named).
"""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from marketplace.models import Recording
from marketplace.selectors import recording_ids_for_preview_rebuild
from marketplace.services.recordings import (
    PreviewSourceUnavailable,
    recording_preview_build,
    recording_preview_mark_failed,
)

EXIT_SOME_FAILED = 1


class Command(BaseCommand):
    help = (
        "Build the previews that are not ready (pending or failed), or every preview with "
        "--all. Idempotent: a ready preview is kept unless --all rebuilds it."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--all",
            action="store_true",
            dest="everything",
            help="Rebuild every preview, including the ones that are ready.",
        )
        parser.add_argument(
            "--recording",
            action="append",
            default=[],
            metavar="UID",
            help="Only this recording (REC-…); may be given more than once. Rebuilt even if "
            "its preview is ready.",
        )
        parser.add_argument(
            "--no-progress", action="store_true", help="Do not draw the progress bar."
        )

    def handle(self, *args, **options):
        everything = options["everything"]
        uids = [uid.strip() for uid in options["recording"] if uid.strip()]
        if uids:
            found = dict(Recording.objects.filter(uid__in=uids).values_list("uid", "pk"))
            unknown = [uid for uid in uids if uid not in found]
            if unknown:
                raise CommandError(f"No such recording: {', '.join(unknown)}.")
            ids, force = [found[uid] for uid in dict.fromkeys(uids)], True
        else:
            ids, force = recording_ids_for_preview_rebuild(include_ready=everything), everything

        if not ids:
            self.stdout.write(self.style.SUCCESS("Every preview is ready; nothing to build."))
            return

        bar = tqdm(
            ids,
            desc="Building previews",
            unit="preview",
            file=options.get("stderr") or sys.stderr,
            disable=options["no_progress"],
            dynamic_ncols=True,
        )
        outcomes = {"ready": 0, "failed": 0}
        failures: list[str] = []
        for recording_id in bar:
            recording = Recording.objects.filter(pk=recording_id).first()
            if recording is None:  # deleted since the list was made
                continue
            bar.set_postfix_str(recording.uid, refresh=False)
            try:
                recording = recording_preview_build(recording, force=force)
            except PreviewSourceUnavailable as exc:
                reason = f"Storage could not be read: {exc}"
                recording_preview_mark_failed(recording_id, reason)
                failures.append(f"{recording.uid}: {reason}")
                outcomes["failed"] += 1
            else:
                if recording.preview_status == Recording.PreviewStatus.READY:
                    outcomes["ready"] += 1
                else:
                    failures.append(f"{recording.uid}: {recording.get_preview_failure_display()}")
                    outcomes["failed"] += 1
            bar.set_postfix(outcomes, refresh=False)
        bar.close()

        for line in failures:
            self.stdout.write(self.style.ERROR(f"  failed {line}"))
        summary = f"{len(ids)} preview(s): {outcomes['ready']} ready, {outcomes['failed']} failed."
        if failures:
            self.stdout.write(self.style.ERROR(summary))
            raise CommandError(
                f"{len(failures)} preview(s) could not be built; see above.",
                returncode=EXIT_SOME_FAILED,
            )
        self.stdout.write(self.style.SUCCESS(summary))
