"""Monthly earnings statements for performers.

A statement covers one performer, one calendar month in UTC and one
currency. It is built only from the ledger (the performer's ``pending`` and
``available`` accounts) and the PerformerEarning sub-ledger, reading nothing
posted at or after the month's end. Entries are append-only and stamped when
they are posted, so a statement of a month that has ended is a pure function
of the data: generating it again gives the same numbers, and whatever is
posted later (a refund in the next month, a late tally) lands in the month it
is posted in, never in a closed one.

What the performer is owed is their balance: pending (royalties accrued, not
yet collected from the buyer) plus available (may be paid out). Every
movement of that balance during the month falls in exactly one section:

* sales: the performer's part of each license sold (sub-ledger, by license);
* royalties: accrued by the tally (sub-ledger, by license and metric);
* refunds: sales reversed because the buyer was refunded (sub-ledger);
* other reversals: reversing entries with no sub-ledger rows (ledger);
* collected: royalty invoices paid by buyers, moving money from pending to
  available (ledger; zero on the balance, shown so both buckets add up);
* payouts: money sent to the performer's bank (ledger).

Gross amounts are before the platform fee, net after it; the platform fee is
gross minus net. ``performer_statement`` checks, per bucket, that the opening
balance plus the month's movements equals the closing balance, and that each
entry's sub-ledger rows equal its ledger lines; if either fails it raises
``StatementOutOfBalance`` rather than print numbers that do not add up.

Payouts: there is no payout model yet. Payout entries posted to the ledger
(``payout_created``, ``payout_failed``) are read already, so today the
section shows 0. The payouts issue only has to enrich ``_payout_lines`` with
its own references (payout id, transfer, arrival date); the totals, the
balance check, the page, the CSV and the PDF already carry the section.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.db.models import F, Q, Sum
from django.db.models.fields.json import KeyTextTransform

from accounts.models import PerformerProfile
from royalties.models import EntryLine, JournalEntry, PerformerEarning, UsageEvent
from royalties.money import format_money

PENDING, AVAILABLE = "pending", "available"

COLLECTED_KINDS = {JournalEntry.Kind.ROYALTY_INVOICE_PAID}
PAYOUT_KINDS = {
    JournalEntry.Kind.PAYOUT_CREATED,
    JournalEntry.Kind.PAYOUT_CONFIRMED,
    JournalEntry.Kind.PAYOUT_FAILED,
}
REVERSAL_KINDS = {JournalEntry.Kind.REVERSAL, JournalEntry.Kind.REFUND}


class StatementOutOfBalance(RuntimeError):
    """The ledger and the sub-ledger disagree about a performer's month."""


def month_bounds(period: date) -> tuple[datetime, datetime]:
    """[start, end) of the calendar month holding ``period``, in UTC."""
    start = datetime(period.year, period.month, 1, tzinfo=UTC)
    if period.month == 12:
        return start, datetime(period.year + 1, 1, 1, tzinfo=UTC)
    return start, datetime(period.year, period.month + 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Amounts:
    gross_minor: int = 0
    fee_minor: int = 0
    net_minor: int = 0

    def __add__(self, other: Amounts) -> Amounts:
        return Amounts(
            self.gross_minor + other.gross_minor,
            self.fee_minor + other.fee_minor,
            self.net_minor + other.net_minor,
        )


@dataclass(frozen=True)
class EarningLine:
    """The performer's part of what one license earned in the month (one
    metric for royalties), before and after the platform fee."""

    kind: str  # sale, royalty or refund (PerformerEarning.Kind)
    license_uid: str
    listing_title: str
    metric: str  # royalties only
    gross_minor: int
    fee_minor: int
    net_minor: int
    # A label that may change after the month (organizations can be renamed);
    # it is not part of the statement's numbers.
    organization_name: str = field(default="", compare=False)

    @property
    def metric_label(self) -> str:
        return metric_label(self.metric)

    @property
    def amounts(self) -> Amounts:
        return Amounts(self.gross_minor, self.fee_minor, self.net_minor)

    @property
    def pending_minor(self) -> int:
        return self.net_minor if self.kind == PerformerEarning.Kind.ROYALTY else 0

    @property
    def available_minor(self) -> int:
        return 0 if self.kind == PerformerEarning.Kind.ROYALTY else self.net_minor


@dataclass(frozen=True)
class LedgerLine:
    """One journal entry's effect on the performer's two buckets, in the
    performer's terms: positive means more is owed to them."""

    entry_id: int
    kind: str
    posted_at: datetime
    description: str
    pending_minor: int
    available_minor: int

    @property
    def net_minor(self) -> int:
        return self.pending_minor + self.available_minor


@dataclass(frozen=True)
class Statement:
    performer_id: int
    period: date  # first day of the month
    currency: str
    opening_pending_minor: int
    opening_available_minor: int
    sales: tuple[EarningLine, ...]
    royalties: tuple[EarningLine, ...]  # ordered by license, then metric
    refunds: tuple[EarningLine, ...]
    reversals: tuple[LedgerLine, ...]
    collected: tuple[LedgerLine, ...]
    payouts: tuple[LedgerLine, ...]
    closing_pending_minor: int
    closing_available_minor: int
    performer_name: str = field(default="", compare=False)

    @property
    def starts_at(self) -> datetime:
        return month_bounds(self.period)[0]

    @property
    def ends_at(self) -> datetime:
        return month_bounds(self.period)[1]

    @property
    def slug(self) -> str:
        return f"{self.period:%Y-%m}"

    @property
    def opening_minor(self) -> int:
        return self.opening_pending_minor + self.opening_available_minor

    @property
    def closing_minor(self) -> int:
        return self.closing_pending_minor + self.closing_available_minor

    @property
    def sales_total(self) -> Amounts:
        return _total(self.sales)

    @property
    def royalties_total(self) -> Amounts:
        return _total(self.royalties)

    @property
    def refunds_total(self) -> Amounts:
        return _total(self.refunds)

    @property
    def reversals_minor(self) -> int:
        return sum(line.net_minor for line in self.reversals)

    @property
    def collected_minor(self) -> int:
        """Royalties collected from buyers: moved from pending to available."""
        return sum(line.available_minor for line in self.collected)

    @property
    def payouts_minor(self) -> int:
        """Paid out to the performer in the month (positive)."""
        return -sum(line.net_minor for line in self.payouts)

    @property
    def platform_fee_minor(self) -> int:
        return (
            self.sales_total.fee_minor
            + self.royalties_total.fee_minor
            + self.refunds_total.fee_minor
        )

    @property
    def movements_minor(self) -> int:
        return (
            self.sales_total.net_minor
            + self.royalties_total.net_minor
            + self.refunds_total.net_minor
            + self.reversals_minor
            - self.payouts_minor
        )

    @property
    def has_activity(self) -> bool:
        return bool(
            self.sales
            or self.royalties
            or self.refunds
            or self.reversals
            or self.collected
            or self.payouts
        )

    def movement_rows(self) -> list[EarningLine | LedgerLine]:
        return [
            *self.sales,
            *self.royalties,
            *self.refunds,
            *self.reversals,
            *self.collected,
            *self.payouts,
        ]


def _total(lines: tuple[EarningLine, ...]) -> Amounts:
    total = Amounts()
    for line in lines:
        total += line.amounts
    return total


def metric_label(metric: str) -> str:
    if not metric:
        return ""
    try:
        return UsageEvent.Metric(metric).label
    except ValueError:
        return metric.replace("_", " ").capitalize()


# --- Building a statement ---------------------------------------------------------------------


def performer_statement(*, performer: PerformerProfile, period: date, currency: str) -> Statement:
    """The statement of ``performer`` for the month holding ``period`` (UTC)
    in ``currency``. Four queries, however much happened in the month."""
    start, end = month_bounds(period)
    codes = {
        PENDING: f"performer:{performer.pk}:pending",
        AVAILABLE: f"performer:{performer.pk}:available",
    }
    lines = EntryLine.objects.filter(
        account__code__in=codes.values(), account__currency=currency, currency=currency
    )
    # Liabilities are credits (negative): the performer's view is the opposite sign.
    edges = lines.filter(entry__created_at__lt=end).aggregate(
        opening_pending=Sum(
            "amount_minor", filter=Q(account__code=codes[PENDING], entry__created_at__lt=start)
        ),
        opening_available=Sum(
            "amount_minor", filter=Q(account__code=codes[AVAILABLE], entry__created_at__lt=start)
        ),
        closing_pending=Sum("amount_minor", filter=Q(account__code=codes[PENDING])),
        closing_available=Sum("amount_minor", filter=Q(account__code=codes[AVAILABLE])),
    )
    edges = {name: -(value or 0) for name, value in edges.items()}

    entries: dict[int, dict] = {}
    for row in (
        lines.filter(entry__created_at__gte=start, entry__created_at__lt=end)
        .values("entry_id", "entry__kind", "entry__memo", "entry__created_at", "account__code")
        .annotate(total=Sum("amount_minor"))
        .order_by("entry__created_at", "entry_id", "account__code")
    ):
        entry = entries.setdefault(
            row["entry_id"],
            {
                "kind": row["entry__kind"],
                "memo": row["entry__memo"],
                "posted_at": row["entry__created_at"],
                PENDING: 0,
                AVAILABLE: 0,
            },
        )
        bucket = PENDING if row["account__code"] == codes[PENDING] else AVAILABLE
        entry[bucket] -= row["total"]

    earnings = PerformerEarning.objects.filter(
        performer=performer,
        currency=currency,
        journal_entry__created_at__gte=start,
        journal_entry__created_at__lt=end,
    )
    earned_by_entry = dict(
        earnings.values("journal_entry_id")
        .annotate(net=Sum("net_minor"))
        .values_list("journal_entry_id", "net")
    )
    grouped: dict[str, list[EarningLine]] = defaultdict(list)
    for row in (
        earnings.values("kind", "license__uid", "metric")
        .annotate(
            listing_title=KeyTextTransform("listing_title", "license__terms"),
            organization_name=F("license__organization__name"),
            gross=Sum("gross_minor"),
            fee=Sum("fee_minor"),
            net=Sum("net_minor"),
        )
        .order_by("kind", "license__uid", "metric")
    ):
        if not (row["gross"] or row["fee"] or row["net"]):
            continue
        grouped[row["kind"]].append(
            EarningLine(
                kind=row["kind"],
                license_uid=row["license__uid"],
                listing_title=row["listing_title"] or "",
                metric=row["metric"],
                gross_minor=row["gross"],
                fee_minor=row["fee"],
                net_minor=row["net"],
                organization_name=row["organization_name"] or "",
            )
        )

    problems = []
    for entry_id in sorted(set(earned_by_entry) - set(entries)):
        problems.append(f"entry {entry_id} has earnings rows but no lines on the balance")
    sections: dict[str, list[LedgerLine]] = defaultdict(list)
    for entry_id, entry in entries.items():
        on_balance = entry[PENDING] + entry[AVAILABLE]
        if entry_id in earned_by_entry:
            if earned_by_entry[entry_id] != on_balance:
                problems.append(
                    f"entry {entry_id}: earnings say {earned_by_entry[entry_id]}, "
                    f"the ledger says {on_balance}"
                )
            continue
        line = LedgerLine(
            entry_id=entry_id,
            kind=entry["kind"],
            posted_at=entry["posted_at"],
            description=entry["memo"],
            pending_minor=entry[PENDING],
            available_minor=entry[AVAILABLE],
        )
        if entry["kind"] in COLLECTED_KINDS:
            sections["collected"].append(line)
        elif entry["kind"] in PAYOUT_KINDS:
            sections["payouts"].append(line)
        elif entry["kind"] in REVERSAL_KINDS:
            sections["reversals"].append(line)
        else:
            problems.append(f"entry {entry_id} ({entry['kind']}) has no earnings rows")

    statement = Statement(
        performer_id=performer.pk,
        period=start.date(),
        currency=currency,
        opening_pending_minor=edges["opening_pending"],
        opening_available_minor=edges["opening_available"],
        sales=tuple(grouped[PerformerEarning.Kind.SALE]),
        royalties=tuple(grouped[PerformerEarning.Kind.ROYALTY]),
        refunds=tuple(grouped[PerformerEarning.Kind.REFUND]),
        reversals=tuple(sections["reversals"]),
        collected=tuple(sections["collected"]),
        payouts=_payout_lines(sections["payouts"]),
        closing_pending_minor=edges["closing_pending"],
        closing_available_minor=edges["closing_available"],
        performer_name=performer.stage_name,
    )
    problems += _balance_problems(statement)
    if problems:
        raise StatementOutOfBalance(
            f"Statement {statement.slug} of performer {performer.pk} ({currency}) does not "
            "add up: " + "; ".join(problems)
        )
    return statement


def _payout_lines(lines: list[LedgerLine]) -> tuple[LedgerLine, ...]:
    """Payouts in the month, one line per ledger entry. The payouts issue
    replaces the ledger memo with the payout's own reference here; nothing
    else in the statement needs to change."""
    return tuple(line for line in lines if line.net_minor)


def _balance_problems(statement: Statement) -> list[str]:
    """Opening + movements == closing, for each bucket and in all."""
    movements = statement.movement_rows()
    pending = statement.opening_pending_minor + sum(row.pending_minor for row in movements)
    available = statement.opening_available_minor + sum(row.available_minor for row in movements)
    problems = []
    if pending != statement.closing_pending_minor:
        problems.append(
            f"pending: opening + movements = {pending}, closing = {statement.closing_pending_minor}"
        )
    if available != statement.closing_available_minor:
        problems.append(
            f"available: opening + movements = {available}, closing = "
            f"{statement.closing_available_minor}"
        )
    if statement.opening_minor + statement.movements_minor != statement.closing_minor:
        problems.append("opening + movements differs from the closing balance")
    return problems


# --- CSV --------------------------------------------------------------------------------------

CSV_COLUMNS = [
    "line",
    "reference",
    "description",
    "metric",
    "gross_minor",
    "fee_minor",
    "net_minor",
    "pending_minor",
    "available_minor",
    "currency",
]


def statement_csv(statement: Statement) -> str:
    """The statement as CSV, amounts in integer minor units. Each movement
    row says what it did to pending and to available, so the opening row
    plus every movement row equals the closing row, column by column."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    currency = statement.currency
    writer.writerow(
        [
            "statement",
            statement.slug,
            f"{statement.performer_name} (performer {statement.performer_id}), "
            f"{statement.starts_at:%Y-%m-%dT%H:%MZ} to {statement.ends_at:%Y-%m-%dT%H:%MZ}",
            "",
            "",
            "",
            "",
            "",
            "",
            currency,
        ]
    )
    writer.writerow(
        [
            "opening",
            "",
            "Opening balance",
            "",
            "",
            "",
            statement.opening_minor,
            statement.opening_pending_minor,
            statement.opening_available_minor,
            currency,
        ]
    )
    for line in (*statement.sales, *statement.royalties, *statement.refunds):
        writer.writerow(
            [
                line.kind,
                line.license_uid,
                f"{line.listing_title} ({line.organization_name})"
                if line.organization_name
                else line.listing_title,
                line.metric,
                line.gross_minor,
                line.fee_minor,
                line.net_minor,
                line.pending_minor,
                line.available_minor,
                currency,
            ]
        )
    for name, rows in (
        ("reversal", statement.reversals),
        ("collected", statement.collected),
        ("payout", statement.payouts),
    ):
        for row in rows:
            writer.writerow(
                [
                    name,
                    f"entry:{row.entry_id}",
                    row.description,
                    "",
                    "",
                    "",
                    row.net_minor,
                    row.pending_minor,
                    row.available_minor,
                    currency,
                ]
            )
    writer.writerow(
        [
            "platform_fee_total",
            "",
            "Platform fees in the month",
            "",
            "",
            statement.platform_fee_minor,
            "",
            "",
            "",
            currency,
        ]
    )
    writer.writerow(
        [
            "payouts_total",
            "",
            "Paid out in the month",
            "",
            "",
            "",
            statement.payouts_minor,
            "",
            "",
            currency,
        ]
    )
    writer.writerow(
        [
            "closing",
            "",
            "Closing balance",
            "",
            "",
            "",
            statement.closing_minor,
            statement.closing_pending_minor,
            statement.closing_available_minor,
            currency,
        ]
    )
    return out.getvalue()


# --- PDF --------------------------------------------------------------------------------------


def _pdf_text(text: str) -> str:
    """The PDF uses the built-in Helvetica (no font files to ship), which
    covers Latin-1 only: other characters are transliterated or replaced."""
    text = text.replace("€", "EUR ").replace("−", "-").replace("—", "-").replace("–", "-")
    text = text.replace("’", "'").replace("“", '"').replace("”", '"')
    text = unicodedata.normalize("NFC", text)
    out = []
    for char in text:
        try:
            char.encode("latin-1")
            out.append(char)
        except UnicodeEncodeError:
            base = unicodedata.normalize("NFKD", char).encode("latin-1", "ignore").decode()
            out.append(base or "?")
    return "".join(out)


def statement_pdf(statement: Statement, *, compress: bool = True) -> bytes:
    """The statement as a PDF, built in memory. The document is dated the end
    of its month and carries nothing else that varies, so the same statement
    always gives the same bytes."""
    from fpdf import FPDF

    def money(amount_minor: int) -> str:
        return _pdf_text(format_money(amount_minor, statement.currency))

    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.set_compression(compress)
    pdf.set_creation_date(statement.ends_at)
    pdf.set_title(_pdf_text(f"Earnings statement {statement.slug}"))
    pdf.set_author("Residuals")
    pdf.set_creator("Residuals")
    pdf.set_producer("Residuals")
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.set_margins(18, 18, 18)
    pdf.add_page()
    width = pdf.epw

    pdf.set_font("Helvetica", "B", 18)
    pdf.cell(width, 9, "Residuals · Earnings statement", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    pdf.set_text_color(90, 95, 115)
    last_day = (statement.ends_at - timedelta(days=1)).date()
    for text in (
        f"{statement.performer_name} (performer {statement.performer_id})",
        f"{statement.period:%B %Y}: {statement.period:%d %b %Y} to {last_day:%d %b %Y} (UTC), "
        f"amounts in {statement.currency}",
    ):
        pdf.cell(width, 5.5, _pdf_text(text), new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(21, 23, 34)
    pdf.ln(4)

    def fit(text: str, room: float) -> str:
        if pdf.get_string_width(text) <= room:
            return text
        while text and pdf.get_string_width(text + "...") > room:
            text = text[:-1]
        return text.rstrip() + "..."

    def heading(text: str) -> None:
        pdf.ln(3)
        pdf.set_font("Helvetica", "B", 11.5)
        pdf.cell(width, 7, _pdf_text(text), new_x="LMARGIN", new_y="NEXT")
        pdf.set_draw_color(207, 211, 222)
        pdf.line(pdf.l_margin, pdf.get_y(), pdf.l_margin + width, pdf.get_y())
        pdf.ln(1)

    def row(label: str, *amounts: str, bold: bool = False, label_width: float = 0) -> None:
        pdf.set_font("Helvetica", "B" if bold else "", 9.5)
        first = label_width or (width - 34 * len(amounts))
        pdf.cell(first, 6, fit(_pdf_text(label), first - 2))
        for amount in amounts:
            pdf.cell(34, 6, amount, align="R")
        pdf.ln(6)

    heading("Summary")
    row("Opening balance (pending + available)", money(statement.opening_minor))
    row("Sales, net of platform fee", money(statement.sales_total.net_minor))
    row("Royalties, net of platform fee", money(statement.royalties_total.net_minor))
    row("Refunds", money(statement.refunds_total.net_minor))
    if statement.reversals:
        row("Other reversals", money(statement.reversals_minor))
    row("Payouts", money(-statement.payouts_minor))
    row("Closing balance", money(statement.closing_minor), bold=True)
    row(
        f"Pending {money(statement.closing_pending_minor)}, "
        f"available {money(statement.closing_available_minor)}; "
        f"platform fees this month {money(statement.platform_fee_minor)}",
    )

    def earning_table(title: str, lines: tuple[EarningLine, ...], total: Amounts) -> None:
        heading(title)
        if not lines:
            row("None this month.")
            return
        row("License", "Gross", "Fee", "Net", bold=True)
        shown = None
        for line in lines:
            label = f"{line.license_uid}  {line.listing_title}"
            if line.organization_name:
                label += f" ({line.organization_name})"
            if line.license_uid != shown:
                row(label)
                shown = line.license_uid
            what = line.metric_label or PerformerEarning.Kind(line.kind).label
            row(
                f"      {what}",
                money(line.gross_minor),
                money(line.fee_minor),
                money(line.net_minor),
            )
        row(
            "Total",
            money(total.gross_minor),
            money(total.fee_minor),
            money(total.net_minor),
            bold=True,
        )

    earning_table("Sales", statement.sales, statement.sales_total)
    earning_table("Royalties by license and metric", statement.royalties, statement.royalties_total)
    earning_table("Refunds", statement.refunds, statement.refunds_total)

    def ledger_table(title: str, lines: tuple[LedgerLine, ...], empty: str) -> None:
        heading(title)
        if not lines:
            row(empty)
            return
        row("Posted", "Pending", "Available", bold=True)
        for line in lines:
            row(
                f"{line.posted_at:%d %b %Y} {line.description}",
                money(line.pending_minor),
                money(line.available_minor),
            )

    if statement.reversals:
        ledger_table("Other reversals", statement.reversals, "")
    ledger_table(
        "Royalties collected from buyers (pending to available)",
        statement.collected,
        "No royalty invoices were paid this month.",
    )
    ledger_table("Payouts", statement.payouts, "No payouts this month.")

    heading("Balances")
    row("", "Pending", "Available", "Total", bold=True)
    row(
        "Opening",
        money(statement.opening_pending_minor),
        money(statement.opening_available_minor),
        money(statement.opening_minor),
    )
    row(
        "Closing",
        money(statement.closing_pending_minor),
        money(statement.closing_available_minor),
        money(statement.closing_minor),
        bold=True,
    )
    pdf.ln(4)
    pdf.set_font("Helvetica", "", 8.5)
    pdf.set_text_color(90, 95, 115)
    pdf.multi_cell(
        width,
        4.5,
        _pdf_text(
            "Opening balance plus this month's movements equals the closing balance, checked "
            "when this statement was produced. Pending royalties become available when the "
            "buyer pays its royalty invoice; available money is paid out to your connected "
            "account. Figures come from the Residuals ledger and include nothing posted after "
            f"{statement.ends_at:%d %b %Y %H:%M} UTC."
        ),
    )
    return bytes(pdf.output())
