from django.core.management.base import BaseCommand

from royalties.checks import CHECKS


class Command(BaseCommand):
    help = "Verify every ledger invariant; exits with status 1 if any is broken."

    def handle(self, *args, **options):
        broken = 0
        for name, check in CHECKS:
            problems = check()
            if problems:
                broken += 1
                self.stdout.write(self.style.ERROR(f"FAIL  {name}"))
                for problem in problems:
                    self.stdout.write(f"      {problem}")
            else:
                self.stdout.write(self.style.SUCCESS(f"ok    {name}"))
        if broken:
            self.stderr.write(f"{broken} invariant(s) broken.")
            raise SystemExit(1)
        self.stdout.write("All ledger invariants hold.")
