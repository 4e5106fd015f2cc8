from datetime import date

from django.core.management.base import BaseCommand, CommandError

from royalties.invoicing import royalty_invoices_run


class Command(BaseCommand):
    help = "Invoice buyer organizations for the royalties of a month (default: last month)."

    def add_arguments(self, parser):
        parser.add_argument("--month", help="YYYY-MM; default: the previous month")

    def handle(self, *args, month=None, **options):
        period = None
        if month:
            try:
                year, number = (int(part) for part in month.split("-"))
                period = date(year, number, 1)
            except ValueError:
                raise CommandError("--month must look like 2026-10") from None
        invoices = royalty_invoices_run(period=period)
        for invoice in invoices:
            self.stdout.write(
                f"  {invoice.organization.name}: {invoice.amount_minor} {invoice.currency} "
                f"({invoice.get_status_display()})"
            )
        self.stdout.write(self.style.SUCCESS(f"{len(invoices)} invoice(s) created."))
