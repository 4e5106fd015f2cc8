from datetime import date

from django.core.management.base import BaseCommand, CommandError

from royalties.invoicing import royalty_invoices_enforce_overdue, royalty_invoices_run


class Command(BaseCommand):
    help = "Invoice buyer organizations for the royalties of a month (default: last month)."

    def add_arguments(self, parser):
        parser.add_argument("--month", help="YYYY-MM; default: the previous month")
        parser.add_argument(
            "--overdue",
            action="store_true",
            help="instead, mark unpaid invoices past due as overdue (and suspend licenses "
            "if ROYALTY_SUSPEND_LICENSES_ON_FAILED_PAYMENT is on)",
        )

    def handle(self, *args, month=None, overdue=False, **options):
        if overdue:
            found = royalty_invoices_enforce_overdue()
            self.stdout.write(
                self.style.SUCCESS(
                    f"{found['overdue']} overdue invoice(s); {found['suspended']} license(s) "
                    "suspended."
                )
            )
            return
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
