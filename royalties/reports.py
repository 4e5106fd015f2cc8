"""Reads behind the buyers' usage and royalty pages, the license usage API and
the staff royalties page.

The monthly report (``monthly_report``) answers, for one organization and
one calendar month in UTC, per license and metric:

* usage: every accepted event whose ``occurred_at`` falls in the month,
  adjustments included (an adjustment counts in the month of its own
  ``occurred_at``, as the buyer reported it), tallied or not yet;
* revenue reported: the ``amount_minor`` of those ``downstream_revenue``
  events, in the license's currency;
* royalties accrued: the RoyaltyAccrual rows the tally wrote during the month
  (by ``created_at``), the same rule the monthly invoice uses, so a month's
  royalties are the ones its invoice collects;
* which royalty invoice covers those royalties, and its status.

Every figure is a sum over append-only rows between two fixed instants, so a
report gives the same numbers each time it is made, and usage reported later
for another month never changes it. Only invoice statuses (and license
statuses) move, as they do in life. Each function runs a fixed number of
queries, whatever the number of licenses, events or invoices.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncMonth

from licensing.models import License
from royalties import watermark
from royalties.models import (
    CapBreach,
    EntryLine,
    RoyaltyAccrual,
    RoyaltyInvoice,
    TallyBatch,
    UsageEvent,
)
from royalties.money import MINOR_UNITS

METRIC_ORDER = list(UsageEvent.Metric.values)
METRIC_LABELS = dict(UsageEvent.Metric.choices)
REVENUE = UsageEvent.Metric.DOWNSTREAM_REVENUE.value
NOT_INVOICED = "not_invoiced"
INVOICE_STATUS_LABELS = {**dict(RoyaltyInvoice.Status.choices), NOT_INVOICED: "Not invoiced yet"}
UNPAID_STATUSES = (RoyaltyInvoice.Status.OPEN, RoyaltyInvoice.Status.FAILED)


# --- Months ------------------------------------------------------------------------------------


def month_start(day: date) -> date:
    return date(day.year, day.month, 1)


def month_add(period: date, months: int) -> date:
    index = period.year * 12 + (period.month - 1) + months
    return date(index // 12, index % 12 + 1, 1)


def month_bounds(period: date) -> tuple[datetime, datetime]:
    """[start, end) of the calendar month in UTC."""
    following = month_add(month_start(period), 1)
    return (
        datetime(period.year, period.month, 1, tzinfo=UTC),
        datetime(following.year, following.month, 1, tzinfo=UTC),
    )


def parse_month(text: str) -> date | None:
    """ "2026-11" → date(2026, 11, 1); None for anything else."""
    if len(text) != 7 or text[4] != "-" or not (text[:4].isdigit() and text[5:].isdigit()):
        return None
    year, month = int(text[:4]), int(text[5:])
    if not (2000 <= year <= 9999 and 1 <= month <= 12):
        return None
    return date(year, month, 1)


def current_month(now: datetime) -> date:
    return month_start(now.astimezone(UTC).date())


def decimal_amount(amount_minor: int, currency: str) -> str:
    """1234567, "USD" → "12345.67" (for CSV cells; integer arithmetic only)."""
    exponent = MINOR_UNITS.get(currency, 2)
    sign = "-" if amount_minor < 0 else ""
    whole, fraction = divmod(abs(amount_minor), 10**exponent)
    return f"{sign}{whole}" + (f".{fraction:0{exponent}d}" if exponent else "")


def csv_text(text: str) -> str:
    """Text for a CSV cell that a spreadsheet will not run as a formula
    (listing titles are written by performers)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def metric_sort_key(metric: str) -> tuple[int, str]:
    return (METRIC_ORDER.index(metric) if metric in METRIC_ORDER else len(METRIC_ORDER), metric)


# --- The monthly report ------------------------------------------------------------------------


@dataclass(frozen=True)
class InvoiceCoverage:
    """The part of a row's royalties that one invoice covers (or, with
    ``invoice_id`` None, that no invoice covers yet)."""

    invoice_id: int | None
    period: date | None
    status: str
    amount_minor: int

    @property
    def status_label(self) -> str:
        return INVOICE_STATUS_LABELS.get(self.status, self.status)

    @property
    def reference(self) -> str:
        return f"RI-{self.invoice_id}" if self.invoice_id else ""


@dataclass(frozen=True)
class MetricRow:
    metric: str
    events: int
    quantity: int  # net of adjustments
    adjustment_quantity: int  # the part of ``quantity`` that adjustments contributed
    revenue_minor: int  # downstream_revenue only, net of adjustments
    untallied_events: int
    royalty_minor: int
    coverage: tuple[InvoiceCoverage, ...]

    @property
    def label(self) -> str:
        return METRIC_LABELS.get(self.metric, self.metric)

    @property
    def is_revenue(self) -> bool:
        return self.metric == REVENUE


@dataclass(frozen=True)
class LicenseReport:
    license_id: int
    uid: str
    title: str
    performer: str
    status: str
    currency: str
    starts_at: datetime
    ends_at: datetime
    rows: tuple[MetricRow, ...]

    @property
    def status_label(self) -> str:
        return dict(License.Status.choices).get(self.status, self.status)

    @property
    def revenue_minor(self) -> int:
        return sum(row.revenue_minor for row in self.rows)

    @property
    def royalty_minor(self) -> int:
        return sum(row.royalty_minor for row in self.rows)

    @property
    def events(self) -> int:
        return sum(row.events for row in self.rows)

    @property
    def untallied_events(self) -> int:
        return sum(row.untallied_events for row in self.rows)


@dataclass(frozen=True)
class CurrencyTotal:
    currency: str
    revenue_minor: int
    royalty_minor: int
    not_invoiced_minor: int


@dataclass(frozen=True)
class InvoiceSummary:
    invoice_id: int
    period: date
    status: str
    currency: str
    amount_minor: int  # the whole invoice
    from_this_month_minor: int  # the royalties of this report it covers

    @property
    def status_label(self) -> str:
        return INVOICE_STATUS_LABELS.get(self.status, self.status)

    @property
    def reference(self) -> str:
        return f"RI-{self.invoice_id}"


@dataclass(frozen=True)
class MonthlyReport:
    organization_id: int
    period: date
    starts_at: datetime
    ends_at: datetime
    licenses: tuple[LicenseReport, ...]
    totals: tuple[CurrencyTotal, ...]
    invoices: tuple[InvoiceSummary, ...]

    @property
    def last_day(self) -> date:
        return (self.ends_at - timedelta(days=1)).date()

    @property
    def events(self) -> int:
        return sum(license.events for license in self.licenses)

    @property
    def untallied_events(self) -> int:
        return sum(license.untallied_events for license in self.licenses)


def monthly_report(*, organization_id: int, period: date) -> MonthlyReport:
    """The organization's usage and royalties for the month of ``period``.
    Three queries, whatever the number of licenses."""
    period = month_start(period)
    start, end = month_bounds(period)

    in_month = {"occurred_at__gte": start, "occurred_at__lt": end}
    usage = (
        UsageEvent.objects.filter(organization_id=organization_id, **in_month)
        .values("license_id", "metric")
        .annotate(
            events=Count("id"),
            units=Sum("quantity"),
            adjusted=Sum("quantity", filter=Q(adjusts__isnull=False)),
            amount=Sum("amount_minor"),
            untallied=Count("id", filter=watermark.untallied_q()),
        )
        .order_by()
    )
    accrued = (
        RoyaltyAccrual.objects.filter(
            license__organization_id=organization_id, created_at__gte=start, created_at__lt=end
        )
        .values(
            "license_id",
            "metric",
            "currency",
            "invoice_line__invoice_id",
            "invoice_line__invoice__period",
            "invoice_line__invoice__status",
            "invoice_line__invoice__amount_minor",
        )
        .annotate(amount=Sum("amount_minor"))
        .order_by()
    )
    usage_by: dict[tuple[int, str], dict] = {}
    for row in usage:
        usage_by[(row["license_id"], row["metric"])] = row
    coverage_by: dict[tuple[int, str], list[InvoiceCoverage]] = defaultdict(list)
    invoices: dict[int, dict] = {}
    for row in accrued:
        invoice_id = row["invoice_line__invoice_id"]
        coverage_by[(row["license_id"], row["metric"])].append(
            InvoiceCoverage(
                invoice_id=invoice_id,
                period=row["invoice_line__invoice__period"],
                status=row["invoice_line__invoice__status"] or NOT_INVOICED,
                amount_minor=row["amount"],
            )
        )
        if invoice_id is not None:
            summary = invoices.setdefault(
                invoice_id,
                {
                    "invoice_id": invoice_id,
                    "period": row["invoice_line__invoice__period"],
                    "status": row["invoice_line__invoice__status"],
                    "currency": row["currency"],
                    "amount_minor": row["invoice_line__invoice__amount_minor"],
                    "from_this_month_minor": 0,
                },
            )
            summary["from_this_month_minor"] += row["amount"]

    active_ids = {license_id for license_id, _ in usage_by} | {
        license_id for license_id, _ in coverage_by
    }
    licenses = (
        License.objects.filter(organization_id=organization_id)
        .filter(Q(starts_at__lt=end, ends_at__gte=start) | Q(pk__in=active_ids))
        .values("id", "uid", "terms", "status", "currency", "starts_at", "ends_at")
        .order_by("starts_at", "id")
    )

    reports = []
    totals: dict[str, dict[str, int]] = defaultdict(
        lambda: {"revenue": 0, "royalty": 0, "not_invoiced": 0}
    )
    for license in licenses:
        license_id = license["id"]
        metrics = {metric for lid, metric in usage_by if lid == license_id} | {
            metric for lid, metric in coverage_by if lid == license_id
        }
        rows = []
        for metric in sorted(metrics, key=metric_sort_key):
            used = usage_by.get((license_id, metric), {})
            coverage = tuple(
                sorted(
                    coverage_by.get((license_id, metric), []),
                    key=lambda c: (c.invoice_id is None, c.invoice_id or 0),
                )
            )
            rows.append(
                MetricRow(
                    metric=metric,
                    events=used.get("events") or 0,
                    quantity=used.get("units") or 0,
                    adjustment_quantity=used.get("adjusted") or 0,
                    revenue_minor=(used.get("amount") or 0) if metric == REVENUE else 0,
                    untallied_events=used.get("untallied") or 0,
                    royalty_minor=sum(c.amount_minor for c in coverage),
                    coverage=coverage,
                )
            )
        currency = license["currency"]
        for row in rows:
            totals[currency]["revenue"] += row.revenue_minor
            totals[currency]["royalty"] += row.royalty_minor
            totals[currency]["not_invoiced"] += sum(
                c.amount_minor for c in row.coverage if c.invoice_id is None
            )
        terms = license["terms"]
        reports.append(
            LicenseReport(
                license_id=license_id,
                uid=license["uid"],
                title=terms.get("listing_title", ""),
                performer=terms.get("performer_stage_name", ""),
                status=license["status"],
                currency=currency,
                starts_at=license["starts_at"],
                ends_at=license["ends_at"],
                rows=tuple(rows),
            )
        )
    return MonthlyReport(
        organization_id=organization_id,
        period=period,
        starts_at=start,
        ends_at=end,
        licenses=tuple(reports),
        totals=tuple(
            CurrencyTotal(c, t["revenue"], t["royalty"], t["not_invoiced"])
            for c, t in sorted(totals.items())
        ),
        invoices=tuple(
            InvoiceSummary(**summary)
            for summary in sorted(invoices.values(), key=lambda s: s["invoice_id"])
        ),
    )


CSV_HEADER = [
    "month",
    "license",
    "listing",
    "license_status",
    "metric",
    "events",
    "quantity",
    "adjustment_quantity",
    "currency",
    "revenue_reported_minor",
    "revenue_reported",
    "royalty_accrued_minor",
    "royalty_accrued",
    "invoices",
    "invoice_statuses",
    "not_invoiced_minor",
]


def monthly_report_csv_rows(report: MonthlyReport) -> list[list[str | int]]:
    """One row per license and metric (a license with no usage in the month
    gets one row with metric left empty). Amounts in minor units, and again
    as plain decimals in the currency's major unit."""
    month = report.period.strftime("%Y-%m")
    rows: list[list[str | int]] = [list(CSV_HEADER)]
    for license in report.licenses:
        lines = license.rows or (None,)
        for row in lines:
            invoiced = [c for c in row.coverage if c.invoice_id] if row else []
            not_invoiced = (
                sum(c.amount_minor for c in row.coverage if not c.invoice_id) if row else 0
            )
            revenue = row.revenue_minor if row else 0
            royalty = row.royalty_minor if row else 0
            rows.append(
                [
                    month,
                    license.uid,
                    csv_text(license.title),
                    license.status,
                    row.metric if row else "",
                    row.events if row else 0,
                    row.quantity if row else 0,
                    row.adjustment_quantity if row else 0,
                    license.currency,
                    revenue,
                    decimal_amount(revenue, license.currency),
                    royalty,
                    decimal_amount(royalty, license.currency),
                    ";".join(c.reference for c in invoiced),
                    ";".join(c.status for c in invoiced),
                    not_invoiced,
                ]
            )
    return rows


# --- The buyer's overview ---------------------------------------------------------------------


@dataclass(frozen=True)
class MonthValue:
    period: date
    value: int


@dataclass(frozen=True)
class MetricSeries:
    metric: str
    months: tuple[MonthValue, ...]  # oldest first, one per month of the window
    total_to_date: int  # every accepted event, all time
    events_to_date: int

    @property
    def label(self) -> str:
        return METRIC_LABELS.get(self.metric, self.metric)

    @property
    def is_revenue(self) -> bool:
        return self.metric == REVENUE

    @property
    def this_month(self) -> int:
        return self.months[-1].value if self.months else 0


@dataclass(frozen=True)
class LicenseUsage:
    license: License
    series: tuple[MetricSeries, ...]
    royalty_to_date_minor: int


def _series_value(metric: str, quantity: int | None, amount: int | None) -> int:
    """Revenue is charted by amount, every other metric by quantity."""
    return (amount or 0) if metric == REVENUE else (quantity or 0)


def usage_overview(*, organization_id: int, until: date, months: int = 6) -> list[LicenseUsage]:
    """Usage of each active or suspended license of the organization, per
    metric and month for the ``months`` months up to ``until``'s month, with
    totals to date. Four queries, whatever the number of licenses."""
    last = month_start(until)
    first = month_add(last, -(months - 1))
    window = [month_add(first, i) for i in range(months)]
    start, _ = month_bounds(first)
    _, end = month_bounds(last)
    licenses = list(
        License.objects.filter(
            organization_id=organization_id,
            status__in=[License.Status.ACTIVE, License.Status.SUSPENDED],
        ).order_by("starts_at", "id")
    )
    ids = [license.pk for license in licenses]
    if not ids:
        return []
    monthly = (
        UsageEvent.objects.filter(license_id__in=ids, occurred_at__gte=start, occurred_at__lt=end)
        .annotate(month=TruncMonth("occurred_at", tzinfo=UTC))
        .values("license_id", "metric", "month")
        .annotate(units=Sum("quantity"), amount=Sum("amount_minor"))
        .order_by()
    )
    to_date = (
        UsageEvent.objects.filter(license_id__in=ids)
        .values("license_id", "metric")
        .annotate(units=Sum("quantity"), amount=Sum("amount_minor"), events=Count("id"))
        .order_by()
    )
    royalties = dict(
        RoyaltyAccrual.objects.filter(license_id__in=ids)
        .values("license_id")
        .annotate(total=Sum("amount_minor"))
        .values_list("license_id", "total")
        .order_by()
    )
    per_month: dict[tuple[int, str], dict[date, int]] = defaultdict(dict)
    for row in monthly:
        per_month[(row["license_id"], row["metric"])][row["month"].date()] = _series_value(
            row["metric"], row["units"], row["amount"]
        )
    totals = {
        (row["license_id"], row["metric"]): (
            _series_value(row["metric"], row["units"], row["amount"]),
            row["events"],
        )
        for row in to_date
    }
    result = []
    for license in licenses:
        metrics = sorted({m for lid, m in totals if lid == license.pk}, key=metric_sort_key)
        series = tuple(
            MetricSeries(
                metric=metric,
                months=tuple(
                    MonthValue(p, per_month[(license.pk, metric)].get(p, 0)) for p in window
                ),
                total_to_date=totals[(license.pk, metric)][0],
                events_to_date=totals[(license.pk, metric)][1],
            )
            for metric in metrics
        )
        result.append(LicenseUsage(license, series, royalties.get(license.pk) or 0))
    return result


def receivable_by_currency(organization_id: int) -> dict[str, int]:
    """What the organization owes in royalties, from its ledger account
    (accrued and not yet paid), per currency."""
    rows = (
        EntryLine.objects.filter(
            account__organization_id=organization_id, account__code__startswith="buyer:"
        )
        .values("currency")
        .annotate(total=Sum("amount_minor"))
        .order_by("currency")
    )
    return {row["currency"]: row["total"] for row in rows if row["total"]}


def royalty_invoices_for(organization_id: int):
    return RoyaltyInvoice.objects.filter(organization_id=organization_id).order_by("-period", "-id")


# --- One license's usage, for the API ----------------------------------------------------------


def license_performer_ids(terms: dict) -> set[int]:
    """The performers a license pays: the listing's performer and everyone in
    the frozen splits of its recordings."""
    ids = {int(terms["performer_id"])} if terms.get("performer_id") else set()
    for shares in (terms.get("splits") or {}).values():
        ids |= {int(performer_id) for performer_id, _ in shares}
    return ids


@dataclass(frozen=True)
class MetricTotal:
    metric: str
    events: int
    quantity: int
    amount_minor: int | None  # downstream_revenue only
    royalty_minor: int


@dataclass(frozen=True)
class LicenseUsageSummary:
    license: License
    period: date | None
    metrics: tuple[MetricTotal, ...]
    revenue_minor: int
    royalty_minor: int
    events: int
    untallied_events: int


def license_usage_summary(*, license: License, period: date | None = None) -> LicenseUsageSummary:
    """Aggregated usage of one license: all time, or one month (usage by
    ``occurred_at``, royalties by when they accrued, as in the monthly
    report). Two queries."""
    events = UsageEvent.objects.filter(license=license)
    accruals = RoyaltyAccrual.objects.filter(license=license)
    if period is not None:
        start, end = month_bounds(period)
        events = events.filter(occurred_at__gte=start, occurred_at__lt=end)
        accruals = accruals.filter(created_at__gte=start, created_at__lt=end)
    used = {
        row["metric"]: row
        for row in events.values("metric")
        .annotate(
            events=Count("id"),
            units=Sum("quantity"),
            amount=Sum("amount_minor"),
            untallied=Count("id", filter=watermark.untallied_q()),
        )
        .order_by()
    }
    owed = dict(
        accruals.values("metric")
        .annotate(total=Sum("amount_minor"))
        .values_list("metric", "total")
        .order_by()
    )
    metrics = tuple(
        MetricTotal(
            metric=metric,
            events=used.get(metric, {}).get("events") or 0,
            quantity=used.get(metric, {}).get("units") or 0,
            amount_minor=(used.get(metric, {}).get("amount") or 0) if metric == REVENUE else None,
            royalty_minor=owed.get(metric) or 0,
        )
        for metric in sorted(set(used) | set(owed), key=metric_sort_key)
    )
    return LicenseUsageSummary(
        license=license,
        period=period,
        metrics=metrics,
        revenue_minor=sum(m.amount_minor or 0 for m in metrics),
        royalty_minor=sum(m.royalty_minor for m in metrics),
        events=sum(m.events for m in metrics),
        untallied_events=sum(row["untallied"] for row in used.values()),
    )


# --- Staff --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StaffMoney:
    """Platform-wide royalty figures in one currency (minor units)."""

    currency: str
    accrued: int = 0  # every royalty the tally accrued (RoyaltyAccrual)
    invoiced: int = 0  # on invoices sent (open, paid or failed)
    paid: int = 0
    receivable: int = 0  # buyers' receivable balances in the ledger
    platform_revenue: int = 0  # platform fees (sales and royalties), from the ledger
    performers_pending: int = 0  # owed to performers, not yet collected from buyers
    performers_available: int = 0  # owed to performers, collected, payable
    performers_in_transit: int = 0


def staff_money() -> list[StaffMoney]:
    """Three queries, one row per currency whatever the number of accounts."""
    figures: dict[str, dict[str, int]] = defaultdict(dict)
    accrued = (
        RoyaltyAccrual.objects.values("currency").annotate(total=Sum("amount_minor")).order_by()
    )
    for row in accrued:
        figures[row["currency"]]["accrued"] = row["total"] or 0
    invoices = (
        RoyaltyInvoice.objects.filter(
            status__in=[
                RoyaltyInvoice.Status.OPEN,
                RoyaltyInvoice.Status.PAID,
                RoyaltyInvoice.Status.FAILED,
            ]
        )
        .values("currency")
        .annotate(
            invoiced=Sum("amount_minor"),
            paid=Sum("amount_minor", filter=Q(status=RoyaltyInvoice.Status.PAID)),
        )
        .order_by()
    )
    for row in invoices:
        figures[row["currency"]]["invoiced"] = row["invoiced"] or 0
        figures[row["currency"]]["paid"] = row["paid"] or 0

    def bucket(suffix: str) -> Q:
        return Q(account__code__startswith="performer:", account__code__endswith=suffix)

    balances = (
        EntryLine.objects.values("currency")
        .annotate(
            receivable=Sum("amount_minor", filter=Q(account__code__startswith="buyer:")),
            revenue=Sum("amount_minor", filter=Q(account__code="platform:revenue")),
            pending=Sum("amount_minor", filter=bucket(":pending")),
            available=Sum("amount_minor", filter=bucket(":available")),
            in_transit=Sum("amount_minor", filter=bucket(":in_transit")),
        )
        .order_by()
    )
    for row in balances:
        figures[row["currency"]].update(
            receivable=row["receivable"] or 0,
            # Income and liabilities carry credit (negative) balances.
            platform_revenue=-(row["revenue"] or 0),
            performers_pending=-(row["pending"] or 0),
            performers_available=-(row["available"] or 0),
            performers_in_transit=-(row["in_transit"] or 0),
        )
    return [StaffMoney(currency=c, **values) for c, values in sorted(figures.items())]


def unpaid_royalty_invoices():
    return (
        RoyaltyInvoice.objects.filter(status__in=UNPAID_STATUSES)
        .select_related("organization")
        .order_by("due_at", "id")
    )


def cap_breaches(*, reviewed: bool):
    breaches = CapBreach.objects.select_related("license__organization", "tally_batch")
    if reviewed:
        return breaches.filter(resolved_at__isnull=False).order_by("-resolved_at", "-id")
    return breaches.filter(resolved_at__isnull=True).order_by("-detected_at", "-id")


def recent_tally_batches(limit: int = 10) -> list[TallyBatch]:
    return list(TallyBatch.objects.order_by("-started_at", "-id")[:limit])


def untallied_events_count() -> int:
    return UsageEvent.objects.filter(watermark.untallied_q()).count()
