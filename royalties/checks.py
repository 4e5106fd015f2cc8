"""Ledger invariants, checked from the data itself (``manage.py ledger_check``).

Each check returns a list of human-readable problems; an empty list means
the invariant holds."""

from __future__ import annotations

from collections import defaultdict

from django.db import connection
from django.db.models import Count, F, Sum

from royalties import watermark
from royalties.models import (
    EntryLine,
    JournalEntry,
    LicenseUsageTotals,
    RoyaltyAccrual,
    RoyaltyInvoice,
    UsageEvent,
)


def entries_balance() -> list[str]:
    rows = (
        EntryLine.objects.values("entry_id", "currency")
        .annotate(total=Sum("amount_minor"))
        .exclude(total=0)
        .order_by("entry_id")[:50]
    )
    return [
        f"entry {r['entry_id']} does not balance in {r['currency']}: {r['total']:+d}" for r in rows
    ]


def entries_have_lines() -> list[str]:
    short = (
        JournalEntry.objects.annotate(n=Count("lines")).filter(n__lt=2).values_list("pk", "n")[:50]
    )
    return [f"entry {pk} has {n} line(s)" for pk, n in short]


def lines_in_account_currency() -> list[str]:
    wrong = EntryLine.objects.exclude(currency=F("account__currency")).values_list("pk", flat=True)[
        :50
    ]
    return [f"line {pk} is not in its account's currency" for pk in wrong]


def reversals_mirror() -> list[str]:
    problems = []
    for reversal in JournalEntry.objects.filter(reverses__isnull=False).select_related("reverses"):
        original = sorted(reversal.reverses.lines.values_list("account_id", "amount_minor"))
        mirrored = sorted(
            (a, -amount) for a, amount in reversal.lines.values_list("account_id", "amount_minor")
        )
        if original != mirrored:
            problems.append(f"reversal {reversal.pk} does not mirror entry {reversal.reverses_id}")
    return problems


def usage_totals_match_events() -> list[str]:
    """The tally's running totals equal the sum of the events at or below
    its watermark."""
    problems = []
    sums = defaultdict(dict)
    revenue = defaultdict(int)
    for row in (
        UsageEvent.objects.filter(watermark.tallied_q())
        .values("license_id", "metric")
        .annotate(quantity=Sum("quantity"), amount=Sum("amount_minor"))
    ):
        sums[row["license_id"]][row["metric"]] = row["quantity"] or 0
        if row["metric"] == "downstream_revenue":
            revenue[row["license_id"]] = row["amount"] or 0
    totals = {t.license_id: t for t in LicenseUsageTotals.objects.all()}
    for license_id in set(sums) | set(totals):
        total = totals.get(license_id)
        quantities = {k: v for k, v in (total.quantities if total else {}).items() if v}
        expected = {k: v for k, v in sums.get(license_id, {}).items() if v}
        if quantities != expected:
            problems.append(
                f"license {license_id}: totals {quantities} but tallied events sum to {expected}"
            )
        if (total.revenue_minor if total else 0) != revenue.get(license_id, 0):
            problems.append(f"license {license_id}: revenue total differs from its tallied events")
    return problems


def tally_batches_cover_the_watermark() -> list[str]:
    """The tally's batches count disjoint id ranges, none past the
    watermark, and together exactly the events at or below it."""
    from royalties.models import TallyBatch

    problems = []
    through = watermark.tallied_through_id()
    previous = None
    for batch in TallyBatch.objects.filter(through_id__gt=0).order_by("from_id", "id"):
        if batch.through_id <= batch.from_id:
            problems.append(f"tally batch {batch.pk} has an empty range")
        if previous is not None and batch.from_id < previous.through_id:
            problems.append(f"tally batches {previous.pk} and {batch.pk} count overlapping ids")
        if batch.through_id > through:
            problems.append(
                f"tally batch {batch.pk} counted ids through {batch.through_id}, past the "
                f"watermark {through}"
            )
        previous = batch
    counted = TallyBatch.objects.aggregate(n=Sum("event_count"))["n"] or 0
    below = UsageEvent.objects.filter(id__lte=through).count()
    if counted != below:
        problems.append(
            f"tally batches counted {counted} events, but {below} lie at or below the "
            f"watermark {through}"
        )
    return problems + watermark.sequence_problems()


def accruals_match_totals() -> list[str]:
    problems = []
    accrued = dict(
        RoyaltyAccrual.objects.values("license_id")
        .annotate(total=Sum("amount_minor"))
        .values_list("license_id", "total")
    )
    for total in LicenseUsageTotals.objects.all():
        if accrued.get(total.license_id, 0) != total.royalty_owed_minor:
            problems.append(
                f"license {total.license_id}: accruals sum to {accrued.get(total.license_id, 0)}, "
                f"totals say {total.royalty_owed_minor} owed"
            )
    return problems


def receivables_match_invoices() -> list[str]:
    """A buyer's receivable equals royalties accrued minus invoices paid."""
    problems = []
    accrued = defaultdict(int)
    for row in RoyaltyAccrual.objects.values("license__organization_id", "currency").annotate(
        t=Sum("amount_minor")
    ):
        accrued[(row["license__organization_id"], row["currency"])] = row["t"]
    paid = defaultdict(int)
    for row in (
        RoyaltyInvoice.objects.filter(status=RoyaltyInvoice.Status.PAID)
        .values("organization_id", "currency")
        .annotate(t=Sum("amount_minor"))
    ):
        paid[(row["organization_id"], row["currency"])] = row["t"]
    balances = defaultdict(int)
    for row in (
        EntryLine.objects.filter(account__code__startswith="buyer:")
        .values("account__organization_id", "currency")
        .annotate(t=Sum("amount_minor"))
    ):
        balances[(row["account__organization_id"], row["currency"])] = row["t"]
    for key in set(accrued) | set(paid) | set(balances):
        if balances[key] != accrued[key] - paid[key]:
            problems.append(
                f"organization {key[0]} ({key[1]}): receivable {balances[key]} but accrued "
                f"{accrued[key]} − paid {paid[key]}"
            )
    return problems


def performer_balances_not_overdrawn() -> list[str]:
    """Liabilities are credit balances: a performer's available money is never
    below zero (that would mean paying out more than was earned)."""
    rows = (
        EntryLine.objects.filter(
            account__code__startswith="performer:", account__code__endswith=":available"
        )
        .values("account__code", "currency")
        .annotate(t=Sum("amount_minor"))
        .filter(t__gt=0)
    )
    return [f"{r['account__code']} ({r['currency']}) is overdrawn by {r['t']}" for r in rows]


def earnings_match_ledger() -> list[str]:
    """Each performer's earnings rows equal their lines in the same entries."""
    from royalties.models import PerformerEarning

    earned = defaultdict(int)
    for row in PerformerEarning.objects.values("journal_entry_id", "performer_id").annotate(
        t=Sum("net_minor")
    ):
        earned[(row["journal_entry_id"], row["performer_id"])] = row["t"]
    posted = defaultdict(int)
    kinds = ["sale", "royalty_accrual", "reversal"]
    for row in (
        EntryLine.objects.filter(account__performer__isnull=False, entry__kind__in=kinds)
        .filter(entry_id__in=PerformerEarning.objects.values("journal_entry_id"))
        .values("entry_id", "account__performer_id")
        .annotate(t=Sum("amount_minor"))
    ):
        posted[(row["entry_id"], row["account__performer_id"])] = -row["t"]
    problems = []
    for key in set(earned) | set(posted):
        if earned[key] != posted[key]:
            problems.append(
                f"entry {key[0]}, performer {key[1]}: earnings say {earned[key]}, "
                f"the ledger says {posted[key]}"
            )
    return problems[:50]


def database_guards_present() -> list[str]:
    if connection.vendor != "postgresql":
        return []
    wanted = {
        "royalties_entryline_balanced",
        "royalties_journalentry_has_lines",
        "royalties_entryline_append_only",
        "royalties_journalentry_append_only",
        "royalties_usage_event_guard",
    }
    with connection.cursor() as cursor:
        cursor.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
        present = {row[0] for row in cursor.fetchall()}
    return [f"database trigger {name} is missing" for name in sorted(wanted - present)]


CHECKS = [
    ("every journal entry balances", entries_balance),
    ("every journal entry has at least two lines", entries_have_lines),
    ("every line is in its account's currency", lines_in_account_currency),
    ("every reversal mirrors its entry", reversals_mirror),
    ("usage totals equal the tallied events", usage_totals_match_events),
    ("tally batches count every event below the watermark once", tally_batches_cover_the_watermark),
    ("royalty accruals equal the usage totals", accruals_match_totals),
    ("receivables equal accruals minus paid invoices", receivables_match_invoices),
    ("no performer balance is overdrawn", performer_balances_not_overdrawn),
    ("performer earnings equal their ledger lines", earnings_match_ledger),
    ("the database guards are installed", database_guards_present),
]
