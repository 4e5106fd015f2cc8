"""A performer's earnings: the overview (/earnings/), the list of monthly
statements and each statement as a page, CSV and PDF.

Who sees what: a performer only ever sees their own earnings; the URLs carry
no performer id. Staff may open any performer's pages by adding
``?performer=<performer id>`` (e.g. /earnings/statements/2026-11/?performer=7),
with a second factor in the session, as on every /staff/ page; for anyone
else that parameter names nobody but themselves (404 otherwise).
"""

from __future__ import annotations

import logging
import re
from datetime import date
from functools import wraps
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone

from accounts.models import PerformerProfile
from royalties import selectors_performer as selectors
from royalties.money import MINOR_UNITS
from royalties.statements import (
    StatementOutOfBalance,
    month_bounds,
    performer_statement,
    statement_csv,
    statement_pdf,
)

logger = logging.getLogger(__name__)

PERIOD = re.compile(r"^(?P<year>20\d\d)-(?P<month>0[1-9]|1[0-2])$")


def _staff_mfa_redirect(request) -> HttpResponseRedirect | None:
    """Staff looking at someone else's money need a second factor in this
    session, exactly as StaffMfaRequiredMiddleware asks on /staff/."""
    from allauth.mfa.models import Authenticator

    from accounts.middleware import session_passed_mfa

    if session_passed_mfa(request):
        return None
    query = urlencode({"next": request.get_full_path()})
    if not Authenticator.objects.filter(user=request.user, type=Authenticator.Type.TOTP).exists():
        return HttpResponseRedirect(f"{reverse('mfa_activate_totp')}?{query}")
    return HttpResponseRedirect(f"{reverse('mfa_reauthenticate')}?{query}")


def earnings_view(view):
    """Resolve whose earnings the request may see and pass them on as
    ``performer``; ``as_staff`` says a staff member is looking at someone
    else's."""

    @login_required
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        own = PerformerProfile.objects.filter(user=request.user).first()
        wanted = request.GET.get("performer", "")
        if wanted and not (own is not None and wanted == str(own.pk)):
            if not request.user.is_staff or not wanted.isdigit():
                raise Http404("No such performer.")
            redirect = _staff_mfa_redirect(request)
            if redirect is not None:
                return redirect
            performer = get_object_or_404(PerformerProfile, pk=int(wanted))
            return view(request, *args, performer=performer, as_staff=True, **kwargs)
        if own is None:
            raise Http404("You have no performer profile yet.")
        return view(request, *args, performer=own, as_staff=False, **kwargs)

    return wrapped


def _query(as_staff: bool, performer: PerformerProfile, **params) -> str:
    if as_staff:
        params = {"performer": performer.pk, **params}
    params = {key: value for key, value in params.items() if value}
    return f"?{urlencode(params)}" if params else ""


def _common(performer: PerformerProfile, as_staff: bool, section: str) -> dict:
    query = _query(as_staff, performer)
    return {
        "performer": performer,
        "as_staff": as_staff,
        "section": section,
        "overview_url": reverse("performer_earnings") + query,
        "statements_url": reverse("performer_statements") + query,
    }


def _statement_links(performer, as_staff, slug: str, currency: str, show_currency: bool) -> dict:
    query = _query(as_staff, performer, currency=currency if show_currency else "")
    return {
        "url": reverse("performer_statement", args=[slug]) + query,
        "csv_url": reverse("performer_statement_csv", args=[slug]) + query,
        "pdf_url": reverse("performer_statement_pdf", args=[slug]) + query,
    }


# --- Overview -------------------------------------------------------------------------------


@earnings_view
def earnings(request, *, performer: PerformerProfile, as_staff: bool):
    today = timezone.now().date()
    overview = selectors.earnings_overview(performer, today=today)
    page = Paginator(overview.licenses, 20).get_page(request.GET.get("page"))
    this_month = f"{today:%Y-%m}"
    return render(
        request,
        "royalties/performer/earnings.html",
        {
            **_common(performer, as_staff, "overview"),
            "overview": overview,
            "balances": overview.balances or [selectors.Balance(currency="USD")],
            "page": page,
            "page_query": _query(as_staff, performer),
            "this_month": _statement_links(performer, as_staff, this_month, "", False),
            "near_threshold_pct": selectors.NEAR_THRESHOLD_BPS // 100,
        },
    )


# --- Statements -----------------------------------------------------------------------------


@earnings_view
def statements(request, *, performer: PerformerProfile, as_staff: bool):
    months = selectors.statement_months(performer)
    several = len({month.currency for month in months}) > 1
    rows = [
        (month, _statement_links(performer, as_staff, month.slug, month.currency, several))
        for month in months
    ]
    current = f"{timezone.now():%Y-%m}"
    return render(
        request,
        "royalties/performer/statements.html",
        {
            **_common(performer, as_staff, "statements"),
            "rows": rows,
            "several_currencies": several,
            "current": _statement_links(performer, as_staff, current, "", False),
            "current_has_row": any(month.slug == current for month in months),
        },
    )


def _period(slug: str) -> date:
    match = PERIOD.match(slug)
    if match is None:
        raise Http404("No such month.")
    period = date(int(match["year"]), int(match["month"]), 1)
    if period > timezone.now().date():
        raise Http404("That month has not started yet.")
    return period


def _statement(request, performer: PerformerProfile, slug: str):
    """The statement asked for, the currency chosen and those on offer."""
    period = _period(slug)
    currencies = selectors.performer_currencies(performer)
    currency = request.GET.get("currency", "").upper()
    if currency and currency not in MINOR_UNITS:
        raise Http404("Unknown currency.")
    if not currency:
        currency = currencies[0] if currencies else "USD"
    return performer_statement(performer=performer, period=period, currency=currency), currencies


def _unbalanced(request, performer, as_staff, slug: str, error: Exception) -> HttpResponse:
    logger.error("Statement %s of performer %s cannot be produced: %s", slug, performer.pk, error)
    return render(
        request,
        "royalties/performer/statement_unavailable.html",
        {**_common(performer, as_staff, "statements"), "slug": slug},
        status=500,
    )


def _neighbour(period: date, step: int) -> date:
    month = period.month - 1 + step
    return date(period.year + month // 12, month % 12 + 1, 1)


@earnings_view
def statement(request, slug: str, *, performer: PerformerProfile, as_staff: bool):
    try:
        result, currencies = _statement(request, performer, slug)
    except StatementOutOfBalance as error:
        return _unbalanced(request, performer, as_staff, slug, error)
    several = len(currencies) > 1
    now = timezone.now()
    previous = _neighbour(result.period, -1)
    following = _neighbour(result.period, 1)
    return render(
        request,
        "royalties/performer/statement.html",
        {
            **_common(performer, as_staff, "statements"),
            "statement": result,
            "is_open": month_bounds(result.period)[1] > now,
            "links": _statement_links(performer, as_staff, result.slug, result.currency, several),
            "currency_links": [
                (
                    code,
                    reverse("performer_statement", args=[result.slug])
                    + _query(as_staff, performer, currency=code),
                )
                for code in currencies
            ]
            if several
            else [],
            "previous_url": reverse("performer_statement", args=[f"{previous:%Y-%m}"])
            + _query(as_staff, performer, currency=result.currency if several else ""),
            "previous": previous,
            "following_url": (
                reverse("performer_statement", args=[f"{following:%Y-%m}"])
                + _query(as_staff, performer, currency=result.currency if several else "")
            )
            if following <= now.date()
            else "",
            "following": following,
        },
    )


def _filename(result, extension: str) -> str:
    return f"residuals-statement-{result.slug}-{result.currency}.{extension}"


@earnings_view
def statement_csv_download(request, slug: str, *, performer: PerformerProfile, as_staff: bool):
    try:
        result, _ = _statement(request, performer, slug)
    except StatementOutOfBalance as error:
        return _unbalanced(request, performer, as_staff, slug, error)
    response = HttpResponse(statement_csv(result), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{_filename(result, "csv")}"'
    response["Cache-Control"] = "private, no-store"
    return response


@earnings_view
def statement_pdf_download(request, slug: str, *, performer: PerformerProfile, as_staff: bool):
    try:
        result, _ = _statement(request, performer, slug)
    except StatementOutOfBalance as error:
        return _unbalanced(request, performer, as_staff, slug, error)
    response = HttpResponse(statement_pdf(result), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{_filename(result, "pdf")}"'
    response["Cache-Control"] = "private, no-store"
    return response
