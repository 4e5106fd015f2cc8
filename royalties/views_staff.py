"""The staff royalties page: money owed and collected across the platform,
unpaid royalty invoices, reuse caps exceeded, and the state of the tally.

Staff only (core.staff_views.staff_required; MFA is enforced on /staff/ by
accounts.middleware.StaffMfaRequiredMiddleware)."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST, require_safe

from core.staff_views import staff_required
from royalties import reports
from royalties.invoicing import royalty_invoices_overdue
from royalties.models import CapBreach
from royalties.tally import CAP_METRICS, cap_breach_mark_reviewed

UNPAID_SHOWN = 50
BREACHES_SHOWN = 50


def _breach_rows(breaches) -> list[dict]:
    rows = []
    for breach in breaches:
        terms = breach.license.terms
        co_performers = reports.license_performer_ids(terms) - {terms.get("performer_id")}
        rows.append(
            {
                "breach": breach,
                "license": breach.license,
                "organization": breach.license.organization,
                "performer": terms.get("performer_stage_name", ""),
                "co_performers": len(co_performers),
                "metric": reports.METRIC_LABELS.get(CAP_METRICS.get(breach.cap, ""), breach.cap),
                "over_by": breach.reported - breach.limit,
            }
        )
    return rows


@staff_required
@require_safe
def staff_royalties(request):
    now = timezone.now()
    unpaid_all = reports.unpaid_royalty_invoices()
    unpaid = list(unpaid_all[:UNPAID_SHOWN])
    overdue_ids = set(
        royalty_invoices_overdue(now)
        .filter(pk__in=[i.pk for i in unpaid])
        .values_list("pk", flat=True)
    )
    for invoice in unpaid:
        invoice.overdue = invoice.pk in overdue_ids
    open_breaches = reports.cap_breaches(reviewed=False)
    return render(
        request,
        "royalties/staff/royalties.html",
        {
            "now": now,
            "money": reports.staff_money(),
            "unpaid": unpaid,
            "unpaid_count": unpaid_all.count(),
            "overdue_count": royalty_invoices_overdue(now).count(),
            "breaches": _breach_rows(open_breaches[:BREACHES_SHOWN]),
            "breach_count": open_breaches.count(),
            "reviewed_breaches": _breach_rows(reports.cap_breaches(reviewed=True)[:10]),
            "batches": reports.recent_tally_batches(),
            "untallied": reports.untallied_events_count(),
        },
    )


@staff_required
@require_POST
def staff_cap_breach_review(request, breach_id: int):
    breach = get_object_or_404(CapBreach.objects.select_related("license"), pk=breach_id)
    already = breach.resolved_at is not None
    cap_breach_mark_reviewed(
        breach_id=breach.pk, by=request.user, request=request, note=request.POST.get("note", "")
    )
    if already:
        messages.info(request, f"The breach on {breach.license.uid} was already reviewed.")
    else:
        messages.success(
            request, f"Marked the {breach.cap} breach on {breach.license.uid} reviewed."
        )
    return redirect("staff_royalties")
