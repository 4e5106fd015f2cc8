from django.core.management.base import BaseCommand
from tqdm import tqdm

from royalties.tally import MAX_EVENTS_PER_PASS, tally_usage, untallied_count


class Command(BaseCommand):
    help = "Tally new usage events into royalties (safe to run while workers tally too)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--max-events",
            type=int,
            default=MAX_EVENTS_PER_PASS,
            help="event ids per transaction",
        )

    def handle(self, *args, max_events, **options):
        total = untallied_count()
        with tqdm(total=total, unit="event", desc="Tallying", file=self.stderr) as bar:
            results = tally_usage(max_events=max_events, progress=lambda r: bar.update(r.events))
        events = sum(r.events for r in results)
        self.stdout.write(
            self.style.SUCCESS(
                f"Tallied {events} event(s) in {len(results)} batch(es); "
                f"{untallied_count()} left untallied (being tallied elsewhere or newly arrived)."
            )
        )
