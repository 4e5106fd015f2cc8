"""Monthly royalty invoices to buyer organizations.

``royalty_invoices_run`` (beat on the 1st of each month, and
``manage.py invoice_royalties``) gathers every accrual not yet invoiced from
before the period's end, per organization and currency, into one invoice with
a line per license and metric, and sends it through the gateway. Running it
again for the same month changes nothing (one invoice per organization,
month and currency; provider calls carry idempotency keys).

When the provider reports the invoice paid (``invoice.paid``), the cash is
recorded and the performers' share of those royalties moves from pending to
available. ``invoice.payment_failed`` and overdue invoices (found daily by
``royalty_invoices_enforce_overdue``) are shown to staff, and suspend the
organization's licenses when ROYALTY_SUSPEND_LICENSES_ON_FAILED_PAYMENT is
on; paying the invoice lifts that suspension.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from accounts.models import Organization, PerformerProfile
from core.payments import GatewayError, get_gateway
from core.services import audit_record
from licensing.models import License
from licensing.services import license_set_status
from royalties import ledger
from royalties.ledger import Line
from royalties.models import (
    EntryLine,
    JournalEntry,
    RoyaltyAccrual,
    RoyaltyInvoice,
    RoyaltyInvoiceLine,
    RoyaltySuspension,
)

logger = logging.getLogger(__name__)


def month_start(day: date) -> date:
    return day.replace(day=1)


def previous_month(today: date) -> date:
    return month_start(month_start(today) - timedelta(days=1))


def _period_end(period: date) -> datetime:
    following = (period.replace(day=28) + timedelta(days=4)).replace(day=1)
    return timezone.make_aware(datetime.combine(following, time.min))


def royalty_invoices_run(*, period: date | None = None) -> list[RoyaltyInvoice]:
    """Invoice the month ``period`` (default: the previous month)."""
    period = month_start(period or previous_month(timezone.localdate()))
    end = _period_end(period)
    created = []
    pending = (
        RoyaltyAccrual.objects.filter(invoice_line__isnull=True, created_at__lt=end)
        .values("license__organization_id", "currency")
        .annotate(total=Sum("amount_minor"))
    )
    for row in pending:
        if row["total"] <= 0:
            continue  # nothing owed on balance (adjustments); carried to next month
        invoice = _invoice_create(row["license__organization_id"], row["currency"], period, end)
        if invoice is not None:
            created.append(invoice)
    for invoice in RoyaltyInvoice.objects.filter(status=RoyaltyInvoice.Status.DRAFT):
        royalty_invoice_send(invoice)
    return created


@transaction.atomic
def _invoice_create(
    organization_id: int, currency: str, period: date, end: datetime
) -> RoyaltyInvoice | None:
    organization = Organization.objects.select_for_update().get(pk=organization_id)
    if RoyaltyInvoice.objects.filter(
        organization=organization, period=period, currency=currency
    ).exists():
        return None
    accruals = list(
        RoyaltyAccrual.objects.select_for_update()
        .filter(
            license__organization=organization,
            currency=currency,
            invoice_line__isnull=True,
            created_at__lt=end,
        )
        .order_by("license_id", "metric", "id")
    )
    grouped: dict[tuple[int, str], list[RoyaltyAccrual]] = defaultdict(list)
    for accrual in accruals:
        grouped[(accrual.license_id, accrual.metric)].append(accrual)
    total = sum(a.amount_minor for a in accruals)
    if total <= 0:
        return None
    invoice = RoyaltyInvoice.objects.create(
        organization=organization,
        period=period,
        currency=currency,
        amount_minor=total,
        due_at=timezone.now() + timedelta(days=settings.ROYALTY_INVOICE_DAYS_UNTIL_DUE),
    )
    for (license_id, metric), group in grouped.items():
        line = RoyaltyInvoiceLine.objects.create(
            invoice=invoice,
            license_id=license_id,
            metric=metric,
            amount_minor=sum(a.amount_minor for a in group),
        )
        RoyaltyAccrual.objects.filter(pk__in=[a.pk for a in group]).update(invoice_line=line)
    audit_record(
        action="royalty_invoice.created",
        target=invoice,
        data={"organization": organization_id, "period": period.isoformat(), "amount_minor": total},
    )
    return invoice


def royalty_invoice_send(invoice: RoyaltyInvoice) -> RoyaltyInvoice:
    """Create, fill, finalize and send the provider's invoice. Safe to retry:
    every call carries an idempotency key made from our own ids."""
    from licensing.services import _organization_customer

    gateway = get_gateway()
    organization = invoice.organization
    try:
        customer = _organization_customer(organization, gateway)
        remote = gateway.invoice_create(
            customer_id=customer,
            currency=invoice.currency,
            days_until_due=settings.ROYALTY_INVOICE_DAYS_UNTIL_DUE,
            metadata={"royalty_invoice": str(invoice.pk), "period": invoice.period.isoformat()},
            idempotency_key=f"royalty-invoice-{invoice.pk}",
        )
        for line in invoice.lines.select_related("license"):
            item = gateway.invoice_item_create(
                customer_id=customer,
                invoice_id=remote.id,
                amount_minor=line.amount_minor,
                currency=invoice.currency,
                description=(
                    f"Royalties {invoice.period:%B %Y}: license {line.license.uid} "
                    f"({line.license.terms['listing_title']}), {line.metric.replace('_', ' ')}"
                ),
                metadata={"license": line.license.uid, "metric": line.metric},
                idempotency_key=f"royalty-invoice-line-{line.pk}",
            )
            RoyaltyInvoiceLine.objects.filter(pk=line.pk).update(stripe_item_id=item.id)
        finalized = gateway.invoice_finalize(remote.id)
        if finalized.status == "open":
            finalized = gateway.invoice_send(remote.id)
    except GatewayError as exc:
        logger.warning("Royalty invoice %s could not be sent: %s", invoice.pk, exc.message)
        return invoice
    RoyaltyInvoice.objects.filter(pk=invoice.pk).update(
        stripe_invoice_id=remote.id,
        hosted_url=finalized.hosted_url,
        status=RoyaltyInvoice.Status.OPEN,
    )
    invoice.refresh_from_db()
    audit_record(action="royalty_invoice.sent", target=invoice, data={"provider_id": remote.id})
    if gateway.simulated and finalized.status == "paid":
        royalty_invoice_paid(provider_invoice_id=remote.id)
    return invoice


@transaction.atomic
def royalty_invoice_paid(*, provider_invoice_id: str) -> str:
    invoice = (
        RoyaltyInvoice.objects.select_for_update()
        .filter(stripe_invoice_id=provider_invoice_id)
        .first()
    )
    if invoice is None:
        return "unknown_invoice"
    if invoice.status == RoyaltyInvoice.Status.PAID:
        return "already_paid"
    currency = invoice.currency
    lines = [
        Line(ledger.platform_account(ledger.PLATFORM_CASH, currency), invoice.amount_minor),
        Line(ledger.buyer_receivable(invoice.organization, currency), -invoice.amount_minor),
    ]
    entries = JournalEntry.objects.filter(accruals__invoice_line__invoice=invoice).distinct()
    pending_by_performer = (
        EntryLine.objects.filter(entry__in=entries, account__code__endswith=":pending")
        .values("account__performer_id")
        .annotate(total=Sum("amount_minor"))
    )
    performers = PerformerProfile.objects.in_bulk(
        [row["account__performer_id"] for row in pending_by_performer]
    )
    for row in sorted(pending_by_performer, key=lambda r: r["account__performer_id"]):
        owed = -row["total"]  # pending is credited (negative) as royalties accrue
        performer = performers[row["account__performer_id"]]
        lines += [
            Line(ledger.performer_account(performer, "pending", currency), owed),
            Line(ledger.performer_account(performer, "available", currency), -owed),
        ]
    ledger.post_entry(
        kind=JournalEntry.Kind.ROYALTY_INVOICE_PAID,
        idempotency_key=f"royalty-invoice-paid:{invoice.pk}",
        lines=lines,
        memo=f"Royalty invoice {invoice.period:%Y-%m} paid by {invoice.organization.name}",
        source_type="royalty_invoice",
        source_id=str(invoice.pk),
    )
    invoice.status = RoyaltyInvoice.Status.PAID
    invoice.paid_at = timezone.now()
    invoice.save(update_fields=["status", "paid_at"])
    audit_record(
        action="royalty_invoice.paid", target=invoice, data={"amount_minor": invoice.amount_minor}
    )
    _lift_suspensions(invoice)
    return "paid"


@transaction.atomic
def royalty_invoice_payment_failed(*, provider_invoice_id: str) -> str:
    invoice = (
        RoyaltyInvoice.objects.select_for_update()
        .filter(stripe_invoice_id=provider_invoice_id)
        .first()
    )
    if invoice is None:
        return "unknown_invoice"
    if invoice.status == RoyaltyInvoice.Status.PAID:
        return "already_paid"
    invoice.status = RoyaltyInvoice.Status.FAILED
    invoice.failure_count += 1
    invoice.save(update_fields=["status", "failure_count"])
    audit_record(
        action="royalty_invoice.payment_failed",
        target=invoice,
        data={"attempts": invoice.failure_count},
    )
    if settings.ROYALTY_SUSPEND_LICENSES_ON_FAILED_PAYMENT:
        _suspend_organization(invoice)
    return "payment_failed"


# The reason every royalty suspension carries: lifting one touches only a
# license whose reason is still this (not one a takedown suspended since).
UNPAID_ROYALTIES_REASON = "A royalty invoice is unpaid."


def _suspend_organization(invoice: RoyaltyInvoice) -> int:
    """Suspend the organization's active licenses, and hold those already
    suspended for unpaid royalties, until ``invoice`` is paid. Idempotent.
    Returns how many licenses this call suspended."""
    suspended = 0
    held_elsewhere = Q(status=License.Status.SUSPENDED, royalty_suspensions__lifted_at__isnull=True)
    for license in (
        License.objects.filter(organization=invoice.organization)
        .filter(Q(status=License.Status.ACTIVE) | held_elsewhere)
        .distinct()
        .order_by("pk")
    ):
        if license.status == License.Status.ACTIVE:
            license_set_status(
                license=license, status=License.Status.SUSPENDED, reason=UNPAID_ROYALTIES_REASON
            )
            suspended += 1
        RoyaltySuspension.objects.get_or_create(invoice=invoice, license=license)
    return suspended


def _lift_suspensions(invoice: RoyaltyInvoice) -> None:
    """Paid: release what ``invoice`` held; a license no other unpaid
    invoice holds, still suspended for royalties and not yet ended, is
    active again."""
    now = timezone.now()
    held = list(
        RoyaltySuspension.objects.select_related("license").filter(
            invoice=invoice, lifted_at__isnull=True
        )
    )
    RoyaltySuspension.objects.filter(pk__in=[s.pk for s in held]).update(lifted_at=now)
    for suspension in held:
        license = suspension.license
        still_held = RoyaltySuspension.objects.filter(
            license=license, lifted_at__isnull=True
        ).exists()
        if (
            not still_held
            and license.status == License.Status.SUSPENDED
            and license.status_reason == UNPAID_ROYALTIES_REASON
            and license.ends_at > now
        ):
            license_set_status(
                license=license,
                status=License.Status.ACTIVE,
                reason=f"Royalty invoice {invoice.period:%Y-%m} paid.",
            )


def royalty_invoices_overdue(now: datetime | None = None):
    return RoyaltyInvoice.objects.filter(
        status__in=[RoyaltyInvoice.Status.OPEN, RoyaltyInvoice.Status.FAILED],
        due_at__lt=now or timezone.now(),
    ).select_related("organization")


def royalty_invoices_enforce_overdue(now: datetime | None = None) -> dict:
    """Daily (beat, and ``manage.py invoice_royalties --overdue``): mark
    invoices unpaid past their due date as overdue (audited once, shown to
    staff) and, when ROYALTY_SUSPEND_LICENSES_ON_FAILED_PAYMENT is on,
    suspend the organization's licenses until the invoice is paid."""
    now = now or timezone.now()
    found = suspended = 0
    for invoice in royalty_invoices_overdue(now):
        with transaction.atomic():
            invoice = RoyaltyInvoice.objects.select_for_update().get(pk=invoice.pk)
            if invoice.status not in {RoyaltyInvoice.Status.OPEN, RoyaltyInvoice.Status.FAILED}:
                continue  # paid meanwhile
            found += 1
            if invoice.overdue_at is None:
                invoice.overdue_at = now
                invoice.save(update_fields=["overdue_at"])
                audit_record(
                    action="royalty_invoice.overdue",
                    target=invoice,
                    data={
                        "due_at": invoice.due_at.isoformat(),
                        "amount_minor": invoice.amount_minor,
                    },
                )
            if settings.ROYALTY_SUSPEND_LICENSES_ON_FAILED_PAYMENT:
                suspended += _suspend_organization(invoice)
    return {"overdue": found, "suspended": suspended}
