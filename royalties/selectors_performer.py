"""Reads behind a performer's earnings pages and their dashboard tile.

Everything here costs a fixed number of queries, however many licenses,
entries or months a performer has: rows are aggregated in SQL and joined in
Python. Usage is read from the tally's running totals (LicenseUsageTotals)
and from counts of events still waiting for the tally; a buyer's notes and
model names on their usage events are never read.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncMonth

from accounts.models import PerformerProfile
from licensing.models import License, LicenseItem
from marketplace.models import Recording
from royalties import watermark
from royalties.models import (
    CapBreach,
    EntryLine,
    LedgerAccount,
    PerformerEarning,
    UsageEvent,
)
from royalties.statements import metric_label

# A license is "close to the threshold" from this share of it (basis points).
NEAR_THRESHOLD_BPS = 7_500
CHART_MONTHS = 12

CAP_LABELS = {
    "max_models_trained": "Models trained",
    "max_fine_tunes": "Fine-tune runs",
    "max_deployments": "Deployments",
}


# --- Balances ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Balance:
    """What the platform owes a performer in one currency, in minor units."""

    currency: str
    pending_minor: int = 0
    available_minor: int = 0
    in_transit_minor: int = 0

    @property
    def total_minor(self) -> int:
        return self.pending_minor + self.available_minor


def performer_balances(performer: PerformerProfile) -> list[Balance]:
    """The performer's balances per currency, from their ledger accounts
    (one query). Liabilities are credits, so the signs are flipped."""
    buckets: dict[str, dict[str, int]] = defaultdict(dict)
    for code, currency, total in (
        EntryLine.objects.filter(account__performer=performer)
        .values_list("account__code", "currency")
        .annotate(total=Sum("amount_minor"))
        .order_by()
    ):
        buckets[currency][code.rsplit(":", 1)[-1]] = -total
    return [
        Balance(
            currency=currency,
            pending_minor=values.get("pending", 0),
            available_minor=values.get("available", 0),
            in_transit_minor=values.get("in_transit", 0),
        )
        for currency, values in sorted(buckets.items(), key=_currency_order)
    ]


def _currency_order(item):
    currency = item[0]
    return (currency != "USD", currency)


def performer_currencies(performer: PerformerProfile) -> list[str]:
    """Currencies the performer has ever been owed money in, USD first."""
    currencies = set(
        LedgerAccount.objects.filter(performer=performer).values_list("currency", flat=True)
    )
    return sorted(currencies, key=lambda c: (c != "USD", c))


# --- Statements -------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatementMonth:
    period: date
    currency: str
    postings: int
    earned_net_minor: int
    closing_minor: int

    @property
    def slug(self) -> str:
        return f"{self.period:%Y-%m}"


def statement_months(performer: PerformerProfile) -> list[StatementMonth]:
    """Months (UTC) in which the performer's balance moved, newest first,
    with what they earned and their closing balance (two queries)."""
    rows = (
        EntryLine.objects.filter(account__performer=performer)
        .filter(
            Q(account__code=f"performer:{performer.pk}:pending")
            | Q(account__code=f"performer:{performer.pk}:available")
        )
        .annotate(month=TruncMonth("entry__created_at", tzinfo=UTC))
        .values("month", "currency")
        .annotate(total=Sum("amount_minor"), postings=Count("entry", distinct=True))
        .order_by("currency", "month")
    )
    earned = {
        (row["month"], row["currency"]): row["net"]
        for row in PerformerEarning.objects.filter(performer=performer)
        .annotate(month=TruncMonth("journal_entry__created_at", tzinfo=UTC))
        .values("month", "currency")
        .annotate(net=Sum("net_minor"))
        .order_by()
    }
    months = []
    running: dict[str, int] = defaultdict(int)
    for row in rows:
        running[row["currency"]] -= row["total"]
        months.append(
            StatementMonth(
                period=row["month"].date(),
                currency=row["currency"],
                postings=row["postings"],
                earned_net_minor=earned.get((row["month"], row["currency"]), 0),
                closing_minor=running[row["currency"]],
            )
        )
    months.sort(key=lambda m: (-m.period.toordinal(), m.currency != "USD", m.currency))
    return months


# --- Earnings over time -----------------------------------------------------------------------


@dataclass(frozen=True)
class ChartBar:
    period: date
    sales_minor: int  # net, after refunds
    royalties_minor: int
    x: int
    width: int
    sales_y: int
    sales_height: int
    royalties_y: int
    royalties_height: int

    @property
    def net_minor(self) -> int:
        return self.sales_minor + self.royalties_minor

    @property
    def center(self) -> int:
        return self.x + self.width // 2

    @property
    def shows_year(self) -> bool:
        return self.period.month == 1


@dataclass(frozen=True)
class ChartTick:
    y: int
    amount_minor: int


@dataclass(frozen=True)
class EarningsChart:
    """Net earnings per month as stacked bars (sales, royalties), laid out
    for an inline SVG of ``width`` × ``height`` user units."""

    currency: str
    bars: tuple[ChartBar, ...]
    ticks: tuple[ChartTick, ...]
    width: int = 720
    height: int = 262
    plot_left: int = 76
    plot_right: int = 712
    plot_top: int = 14
    plot_bottom: int = 220

    @property
    def total_minor(self) -> int:
        return sum(bar.net_minor for bar in self.bars)

    @property
    def best(self) -> ChartBar | None:
        best = max(self.bars, key=lambda bar: bar.net_minor, default=None)
        return best if best is not None and best.net_minor > 0 else None

    @property
    def label_y(self) -> int:
        return self.plot_bottom + 18

    @property
    def year_y(self) -> int:
        return self.plot_bottom + 34

    @property
    def axis_x(self) -> int:
        return self.plot_left - 10

    @property
    def first(self) -> date:
        return self.bars[0].period

    @property
    def last(self) -> date:
        return self.bars[-1].period


def chart_months(today: date, count: int = CHART_MONTHS) -> list[date]:
    """The first days of the ``count`` months ending with ``today``'s."""
    months = []
    year, month = today.year, today.month
    for _ in range(count):
        months.append(date(year, month, 1))
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return months[::-1]


def _nice_step(top_minor: int, intervals: int) -> int:
    """A round tick step (1, 2 or 5 × a power of ten, in minor units) so that
    ``intervals`` steps reach at least ``top_minor``."""
    needed = max(1, -(-top_minor // intervals))
    magnitude = 10 ** (len(str(needed)) - 1)
    for factor in (1, 2, 5, 10):
        if factor * magnitude >= needed:
            return factor * magnitude
    return 10 * magnitude  # pragma: no cover - the loop always returns


def earnings_charts(performer: PerformerProfile, *, today: date) -> list[EarningsChart]:
    """One chart per currency the performer earned in over the last twelve
    months (one query); an empty USD chart when they earned nothing."""
    months = chart_months(today)
    since = datetime(months[0].year, months[0].month, 1, tzinfo=UTC)
    sums: dict[str, dict[date, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    for row in (
        PerformerEarning.objects.filter(performer=performer, journal_entry__created_at__gte=since)
        .annotate(month=TruncMonth("journal_entry__created_at", tzinfo=UTC))
        .values("month", "currency", "kind")
        .annotate(net=Sum("net_minor"))
        .order_by()
    ):
        sums[row["currency"]][row["month"].date()][row["kind"]] = row["net"]
    if not sums:
        sums["USD"] = defaultdict(dict)
    return [
        _chart(currency, months, sums[currency])
        for currency in sorted(sums, key=lambda c: (c != "USD", c))
    ]


def _chart(currency: str, months: list[date], sums: dict[date, dict[str, int]]) -> EarningsChart:
    chart = EarningsChart(currency=currency, bars=(), ticks=())
    plot_height = chart.plot_bottom - chart.plot_top
    values = []
    for month in months:
        kinds = sums.get(month, {})
        sales = kinds.get("sale", 0) + kinds.get("refund", 0)
        values.append((month, sales, kinds.get("royalty", 0)))
    peak = max((max(0, s) + max(0, r) for _, s, r in values), default=0)
    intervals = 4
    step = _nice_step(peak, intervals) if peak else 10_000
    top = step * intervals

    def y_of(amount_minor: int) -> int:
        # Screen geometry, not money: an approximate pixel position is fine.
        return chart.plot_bottom - amount_minor * plot_height // top

    slot = (chart.plot_right - chart.plot_left) // len(months)
    bar_width = slot * 3 // 5
    bars = []
    for index, (month, sales, royalties) in enumerate(values):
        x = chart.plot_left + index * slot + (slot - bar_width) // 2
        sales_top = y_of(max(0, sales))
        royalties_top = y_of(max(0, sales) + max(0, royalties))
        bars.append(
            ChartBar(
                period=month,
                sales_minor=sales,
                royalties_minor=royalties,
                x=x,
                width=bar_width,
                sales_y=sales_top,
                sales_height=chart.plot_bottom - sales_top,
                royalties_y=royalties_top,
                royalties_height=sales_top - royalties_top,
            )
        )
    ticks = tuple(ChartTick(y=y_of(step * i), amount_minor=step * i) for i in range(intervals + 1))
    return EarningsChart(currency=currency, bars=tuple(bars), ticks=ticks)


# --- Licenses: usage, thresholds, cap breaches ------------------------------------------------


@dataclass
class LicenseUsage:
    license: License
    organization_name: str
    metrics: list[tuple[str, int]]  # (label, cumulative quantity), tallied
    revenue_minor: int  # cumulative downstream revenue reported, tallied
    royalty_owed_minor: int  # everything accrued under the license, all performers
    earned_net_minor: int  # this performer's part: sale and royalties, after fees
    untallied_events: int
    share_bps: int
    threshold_minor: int
    breaches: list[CapBreach] = field(default_factory=list)

    @property
    def currency(self) -> str:
        return self.license.currency

    @property
    def title(self) -> str:
        return self.license.terms.get("listing_title", "")

    @property
    def share_label(self) -> str:
        """20 % for 2,000 bps, 12.5 % for 1,250 bps."""
        whole, rest = divmod(self.share_bps, 100)
        return f"{whole}.{rest:02d}".rstrip("0") if rest else str(whole)

    @property
    def has_revenue_share(self) -> bool:
        return bool(self.share_bps)

    @property
    def threshold_crossed(self) -> bool:
        return self.has_revenue_share and self.revenue_minor > self.threshold_minor

    @property
    def threshold_progress_bps(self) -> int:
        """How much of the threshold the reported revenue has reached, capped
        at 10,000 (a display figure: the royalties never use it)."""
        if not self.threshold_minor:
            return 10_000
        return min(10_000, max(0, self.revenue_minor) * 10_000 // self.threshold_minor)

    @property
    def threshold_progress_pct(self) -> int:
        return self.threshold_progress_bps // 100

    @property
    def near_threshold(self) -> bool:
        return (
            self.has_revenue_share
            and self.threshold_minor > 0
            and not self.threshold_crossed
            and self.threshold_progress_bps >= NEAR_THRESHOLD_BPS
        )

    @property
    def threshold_left_minor(self) -> int:
        return max(0, self.threshold_minor - self.revenue_minor)

    @property
    def open_breaches(self) -> list[CapBreach]:
        return [breach for breach in self.breaches if breach.resolved_at is None]


def performer_licenses(performer: PerformerProfile):
    """Licenses that cover the performer's recordings (their own, or ones
    they share in) or have paid them anything."""
    recordings = Recording.objects.filter(
        Q(performer=performer) | Q(splits__performer=performer)
    ).values("pk")
    return License.objects.filter(
        Q(pk__in=LicenseItem.objects.filter(recording__in=recordings).values("license_id"))
        | Q(pk__in=PerformerEarning.objects.filter(performer=performer).values("license_id"))
    )


def license_usage(performer: PerformerProfile) -> list[LicenseUsage]:
    """Usage and earnings per license, newest license first (four queries)."""
    licenses = list(
        performer_licenses(performer)
        .select_related("organization", "usage_totals")
        .order_by("-created_at", "-id")
    )
    ids = [license.pk for license in licenses]
    earned = dict(
        PerformerEarning.objects.filter(performer=performer, license_id__in=ids)
        .values("license_id")
        .annotate(net=Sum("net_minor"))
        .values_list("license_id", "net")
    )
    # Only a count of what waits for the tally: the events' notes and model
    # names are the buyer's own business.
    waiting = dict(
        UsageEvent.objects.filter(watermark.untallied_q(), license_id__in=ids)
        .values("license_id")
        .annotate(n=Count("id"))
        .values_list("license_id", "n")
    )
    breaches: dict[int, list[CapBreach]] = defaultdict(list)
    for breach in CapBreach.objects.filter(license_id__in=ids).order_by("-detected_at", "-id"):
        breaches[breach.license_id].append(breach)

    rows = []
    for license in licenses:
        totals = getattr(license, "usage_totals", None)
        quantities = dict(totals.quantities) if totals else {}
        metrics = [
            (metric_label(metric), quantity)
            for metric, quantity in sorted(quantities.items())
            if quantity and metric != UsageEvent.Metric.DOWNSTREAM_REVENUE
        ]
        rows.append(
            LicenseUsage(
                license=license,
                organization_name=license.organization.name,
                metrics=metrics,
                revenue_minor=totals.revenue_minor if totals else 0,
                royalty_owed_minor=totals.royalty_owed_minor if totals else 0,
                earned_net_minor=earned.get(license.pk, 0),
                untallied_events=waiting.get(license.pk, 0),
                share_bps=int(license.terms.get("revenue_share_bps") or 0),
                threshold_minor=int(license.terms.get("revenue_threshold_minor") or 0),
                breaches=breaches.get(license.pk, []),
            )
        )
    return rows


# --- The overview page ------------------------------------------------------------------------


@dataclass(frozen=True)
class BreachRow:
    """Usage reported beyond one of a license's reuse caps."""

    usage: LicenseUsage
    cap: str
    limit: int
    reported: int
    detected_at: datetime
    resolved_at: datetime | None

    @property
    def over_by(self) -> int:
        return self.reported - self.limit


@dataclass
class EarningsOverview:
    balances: list[Balance]
    charts: list[EarningsChart]
    licenses: list[LicenseUsage]

    @property
    def near_threshold(self) -> list[LicenseUsage]:
        near = [row for row in self.licenses if row.near_threshold]
        return sorted(near, key=lambda row: (-row.threshold_progress_bps, row.license.uid))

    @property
    def breaches(self) -> list[BreachRow]:
        rows = [
            BreachRow(
                usage=row,
                cap=cap_label(breach.cap),
                limit=breach.limit,
                reported=breach.reported,
                detected_at=breach.detected_at,
                resolved_at=breach.resolved_at,
            )
            for row in self.licenses
            for breach in row.breaches
        ]
        return sorted(rows, key=lambda r: (r.resolved_at is not None, -r.detected_at.timestamp()))

    @property
    def open_breach_count(self) -> int:
        return sum(len(row.open_breaches) for row in self.licenses)

    @property
    def sharing_count(self) -> int:
        return sum(1 for row in self.licenses if row.threshold_crossed)


def earnings_overview(performer: PerformerProfile, *, today: date) -> EarningsOverview:
    """Everything /earnings/ shows, in six queries whatever the numbers."""
    return EarningsOverview(
        balances=performer_balances(performer),
        charts=earnings_charts(performer, today=today),
        licenses=license_usage(performer),
    )


def cap_label(cap: str) -> str:
    return CAP_LABELS.get(cap, cap.replace("_", " ").capitalize())
