"""Buyers' usage and royalty pages: the overview with charts, the monthly
report (page and CSV) and the list of royalty invoices.

Members of the organization see them; so does staff whose session passed a
second factor (the same bar as the staff pages). Anyone else gets 404, so an
organization's existence never leaks. The figures come from
royalties.reports; the views only pick the month and draw."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Min, Prefetch, Q, Sum
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from accounts.middleware import session_passed_mfa
from accounts.models import Membership, Organization
from licensing.models import License
from marketplace.templatetags.money import format_money
from royalties import reports
from royalties.models import RoyaltyInvoice, RoyaltyInvoiceLine

OVERVIEW_MONTHS = 6
REPORT_MONTHS_LISTED = 24


def organization_for_viewer(request, slug: str) -> tuple[Organization, Membership | None]:
    """The organization and the viewer's membership (None for staff who are
    not members). 404 for everyone else."""
    membership = (
        Membership.objects.select_related("organization")
        .filter(user=request.user, organization__slug=slug)
        .first()
    )
    if membership is not None:
        return membership.organization, membership
    if request.user.is_staff and session_passed_mfa(request):
        organization = Organization.objects.filter(slug=slug).first()
        if organization is not None:
            return organization, None
    raise Http404("No such organization.")


def _page_context(organization, membership, current: str = "usage") -> dict:
    return {
        "organization": organization,
        "membership": membership,
        "is_owner": bool(membership and membership.is_owner),
        "role_label": membership.get_role_display() if membership else "Staff",
        "current": current,
    }


def _month_or_404(month: str, now) -> date:
    period = reports.parse_month(month)
    if period is None or period > reports.current_month(now):
        raise Http404("No report for that month.")
    return period


# --- Charts -------------------------------------------------------------------------------------

CHART_WIDTH = 300
CHART_HEIGHT = 112
PLOT_TOP = 18  # room for the value above the tallest bar
PLOT_BOTTOM = 88  # the baseline; month labels sit below it
SLOT_GAP = 10


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label_x: float
    value_y: float
    month: str
    text: str
    current: bool


def format_value(value: int, *, is_revenue: bool, currency: str) -> str:
    return format_money(value, currency) if is_revenue else f"{value:,}"


def bar_chart(series: reports.MetricSeries, currency: str) -> dict:
    """Geometry of a small bar chart of one metric's monthly values, drawn as
    inline SVG by templates/royalties/buyer/_bar_chart.html. Bars scale to
    the largest month; a month with some usage always gets a visible bar."""
    values = [max(0, point.value) for point in series.months]
    top = max(values, default=0)
    slot = CHART_WIDTH / max(1, len(values))
    plot = PLOT_BOTTOM - PLOT_TOP
    bars = []
    for index, (point, value) in enumerate(zip(series.months, values, strict=True)):
        height = 0.0 if not top else max(2.0, round(plot * value / top, 1)) if value else 0.0
        x = round(index * slot + SLOT_GAP / 2, 1)
        bars.append(
            Bar(
                x=x,
                y=round(PLOT_BOTTOM - height, 1),
                width=round(slot - SLOT_GAP, 1),
                height=height,
                label_x=round(index * slot + slot / 2, 1),
                value_y=round(PLOT_BOTTOM - height - 5, 1),
                month=point.period.strftime("%b %Y"),
                text=format_value(point.value, is_revenue=series.is_revenue, currency=currency),
                current=index == len(values) - 1,
            )
        )
    peak = max(bars, key=lambda bar: bar.height, default=None)
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "baseline": PLOT_BOTTOM,
        "label_y": CHART_HEIGHT - 6,
        "center_x": CHART_WIDTH / 2,
        "empty_y": PLOT_BOTTOM - 30,
        "bars": bars,
        "peak": peak if top else None,
        "empty": not top,
        "description": "; ".join(f"{bar.month}: {bar.text}" for bar in bars),
    }


# --- Pages --------------------------------------------------------------------------------------


@login_required
@require_safe
def buyer_usage(request, slug: str):
    """Per active license, usage per metric over the last months (charts with
    a table beside them), what is owed, and the latest royalty invoices."""
    organization, membership = organization_for_viewer(request, slug)
    now = timezone.now()
    this_month = reports.current_month(now)
    usage = reports.usage_overview(
        organization_id=organization.pk, until=this_month, months=OVERVIEW_MONTHS
    )
    licenses = [_license_usage(entry) for entry in usage]
    report = reports.monthly_report(organization_id=organization.pk, period=this_month)
    invoices = list(reports.royalty_invoices_for(organization.pk)[:6])
    for invoice in invoices:
        _mark(invoice, now)
    unpaid = list(
        reports.royalty_invoices_for(organization.pk)
        .filter(status__in=reports.UNPAID_STATUSES)
        .values("currency")
        .annotate(
            n=Count("id"), total=Sum("amount_minor"), overdue=Count("id", filter=Q(due_at__lt=now))
        )
        .order_by("currency")
    )
    first = License.objects.filter(organization=organization).aggregate(first=Min("starts_at"))
    return render(
        request,
        "royalties/buyer/usage.html",
        {
            **_page_context(organization, membership),
            "now": now,
            "this_month": this_month,
            "licenses": licenses,
            "report": report,
            "receivable": sorted(reports.receivable_by_currency(organization.pk).items()),
            "invoices": invoices,
            "unpaid": unpaid,
            "overdue_count": sum(row["overdue"] for row in unpaid),
            "report_months": _report_months(first["first"], this_month),
            "chart_months": OVERVIEW_MONTHS,
        },
    )


def _license_usage(entry: reports.LicenseUsage) -> dict:
    currency = entry.license.currency

    def shown(value: int, series: reports.MetricSeries) -> str:
        return format_value(value, is_revenue=series.is_revenue, currency=currency)

    periods = [point.period for point in entry.series[0].months] if entry.series else []
    return {
        "license": entry.license,
        "royalty_to_date": entry.royalty_to_date_minor,
        "metrics": [
            {
                "series": series,
                "chart": bar_chart(series, currency),
                "this_month": shown(series.this_month, series),
                "to_date": shown(series.total_to_date, series),
            }
            for series in entry.series
        ],
        # The same figures as a table: one row per month, one column per metric.
        "months": [
            {
                "period": period,
                "values": [shown(series.months[i].value, series) for series in entry.series],
            }
            for i, period in enumerate(periods)
        ],
    }


def _mark(invoice: RoyaltyInvoice, now) -> None:
    unpaid = invoice.status in reports.UNPAID_STATUSES
    invoice.overdue = bool(unpaid and invoice.due_at and invoice.due_at < now)
    invoice.payable = unpaid and bool(invoice.hosted_url)


def _report_months(first_start, this_month) -> list:
    if first_start is None:
        return [this_month]
    first = max(
        reports.month_start(first_start.astimezone(reports.UTC).date()),
        reports.month_add(this_month, -(REPORT_MONTHS_LISTED - 1)),
    )
    months = []
    period = this_month
    while period >= first:
        months.append(period)
        period = reports.month_add(period, -1)
    return months or [this_month]


@login_required
@require_safe
def buyer_usage_report(request, slug: str, month: str):
    organization, membership = organization_for_viewer(request, slug)
    now = timezone.now()
    period = _month_or_404(month, now)
    report = reports.monthly_report(organization_id=organization.pk, period=period)
    this_month = reports.current_month(now)
    previous = reports.month_add(period, -1)
    following = reports.month_add(period, 1)
    return render(
        request,
        "royalties/buyer/report.html",
        {
            **_page_context(organization, membership),
            "report": report,
            "period": period,
            "in_progress": period == this_month,
            "previous": previous,
            "following": following if following <= this_month else None,
            "now": now,
        },
    )


@login_required
@require_safe
def buyer_usage_report_csv(request, slug: str, month: str):
    organization, _ = organization_for_viewer(request, slug)
    period = _month_or_404(month, timezone.now())
    report = reports.monthly_report(organization_id=organization.pk, period=period)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    name = f"residuals-usage-{organization.slug}-{period:%Y-%m}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "private, no-store"
    writer = csv.writer(response)
    writer.writerows(reports.monthly_report_csv_rows(report))
    return response


@login_required
@require_safe
def buyer_royalty_invoices(request, slug: str):
    organization, membership = organization_for_viewer(request, slug)
    now = timezone.now()
    invoices = (
        reports.royalty_invoices_for(organization.pk)
        .annotate(line_count=Count("lines"))
        .prefetch_related(
            Prefetch(
                "lines",
                queryset=RoyaltyInvoiceLine.objects.select_related("license").order_by("id"),
            )
        )
    )
    page = Paginator(invoices, 25).get_page(request.GET.get("page"))
    for invoice in page:
        _mark(invoice, now)
        for line in invoice.lines.all():  # prefetched
            line.metric_label = reports.METRIC_LABELS.get(line.metric, line.metric)
    counts = dict(
        RoyaltyInvoice.objects.filter(organization=organization)
        .values_list("status")
        .annotate(n=Count("id"))
        .order_by()
    )
    return render(
        request,
        "royalties/buyer/invoices.html",
        {
            **_page_context(organization, membership, "usage"),
            "page": page,
            "now": now,
            "unpaid_count": sum(counts.get(s, 0) for s in reports.UNPAID_STATUSES),
            "paid_count": counts.get(RoyaltyInvoice.Status.PAID, 0),
            "receivable": sorted(reports.receivable_by_currency(organization.pk).items()),
        },
    )
