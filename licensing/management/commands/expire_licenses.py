"""Run the license lifecycle once, by hand (beat runs it every 10 minutes):
start scheduled renewals, send the 30- and 7-day reminders, expire ended
licenses and request deletion attestations. Safe to run at any time."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from licensing.lifecycle import licenses_lifecycle_run

STEPS = {
    "started": "Scheduled renewals started",
    "reminded": "Reminders sent",
    "expired": "Licenses expired",
}


class Command(BaseCommand):
    help = "Expire ended licenses, start renewals, send reminders (idempotent)."

    def handle(self, *args, **options):
        def progress(step: str, count: int) -> None:
            self.stdout.write(f"  {STEPS.get(step, step)}: {count}")

        self.stdout.write("Running the license lifecycle…")
        report = licenses_lifecycle_run(progress=progress)
        for uid in report.expired:
            self.stdout.write(f"  expired {uid}; deletion attestation requested")
        for uid, days in report.reminded:
            self.stdout.write(f"  reminded {uid} ({days}-day notice)")
        for uid in report.started:
            self.stdout.write(f"  started {uid}")
        self.stdout.write(self.style.SUCCESS(report.summary()))
