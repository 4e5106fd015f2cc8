"""Money for license sales: fulfilment of paid orders, refunds and
disputes. Each function runs in one transaction with the order row locked,
so a webhook delivered twice, or two webhooks for one order at once, change
the order once.

Sale posting (DESIGN.md, "Money flows"): price P, platform fee
F = PLATFORM_FEE_BPS of P rounded down; debit platform:cash P, credit each
performer's available balance their part of P − F (royalties.splits), credit
platform:revenue F. A refund posts the reverse of the sale entry.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import PerformerProfile
from core.services import audit_record
from licensing.models import License, Order
from licensing.services import issue_licenses, license_set_status
from royalties import ledger
from royalties.ledger import Line
from royalties.models import JournalEntry, PerformerEarning
from royalties.money import percentage_of
from royalties.splits import performer_parts

logger = logging.getLogger(__name__)


def post_license_sale(license: License) -> JournalEntry:
    price, currency = license.price_minor, license.currency
    fee = percentage_of(price, settings.PLATFORM_FEE_BPS)
    parts = performer_parts(price - fee, license.terms)
    gross = performer_parts(price, license.terms)
    performers = PerformerProfile.objects.in_bulk(list(parts))
    lines = [
        Line(ledger.platform_account(ledger.PLATFORM_CASH, currency), price),
        Line(ledger.platform_account(ledger.PLATFORM_REVENUE, currency), -fee),
    ]
    lines += [
        Line(ledger.performer_account(performers[pid], "available", currency), -amount)
        for pid, amount in parts.items()
    ]
    entry = ledger.post_entry(
        kind=JournalEntry.Kind.SALE,
        idempotency_key=f"sale:license:{license.pk}",
        lines=lines,
        memo=f"Sale of license {license.uid} ({license.terms['listing_title']})",
        source_type="license",
        source_id=str(license.pk),
    )
    if not entry.earnings.exists():
        PerformerEarning.objects.bulk_create(
            [
                PerformerEarning(
                    performer_id=pid,
                    journal_entry=entry,
                    license=license,
                    kind=PerformerEarning.Kind.SALE,
                    gross_minor=gross.get(pid, 0),
                    fee_minor=gross.get(pid, 0) - amount,
                    net_minor=amount,
                    currency=currency,
                )
                for pid, amount in parts.items()
            ]
        )
    return entry


def _lock_order(**lookup) -> Order | None:
    return Order.objects.select_for_update().filter(**lookup).select_related("organization").first()


@transaction.atomic
def checkout_completed(*, session_id: str, payment_status: str, payment_intent: str | None) -> str:
    """``checkout.session.completed``: fulfil when paid; when the payment
    method is asynchronous, wait for async_payment_succeeded."""
    order = _lock_order(checkout_session_id=session_id)
    if order is None:
        return "unknown_session"
    if payment_intent and not order.payment_intent_id:
        order.payment_intent_id = payment_intent
        order.save(update_fields=["payment_intent_id", "updated_at"])
    if order.status == Order.Status.PAID:
        return "already_fulfilled"
    if payment_status != "paid":
        if order.status == Order.Status.PENDING:
            order.status = Order.Status.PROCESSING
            order.save(update_fields=["status", "updated_at"])
        return "awaiting_async_payment"
    return _fulfil(order)


@transaction.atomic
def async_payment_settled(*, session_id: str, succeeded: bool, payment_intent: str | None) -> str:
    order = _lock_order(checkout_session_id=session_id)
    if order is None:
        return "unknown_session"
    if payment_intent and not order.payment_intent_id:
        order.payment_intent_id = payment_intent
    if order.status == Order.Status.PAID:
        return "already_fulfilled"
    if succeeded:
        return _fulfil(order)
    order.status = Order.Status.FAILED
    order.status_reason = "The payment did not go through."
    order.save(update_fields=["status", "status_reason", "payment_intent_id", "updated_at"])
    audit_record(action="order.payment_failed", target=order)
    return "payment_failed"


@transaction.atomic
def checkout_expired(*, session_id: str) -> str:
    order = _lock_order(checkout_session_id=session_id)
    if order is None:
        return "unknown_session"
    if order.status in (Order.Status.PENDING, Order.Status.PROCESSING):
        order.status = Order.Status.EXPIRED
        order.save(update_fields=["status", "updated_at"])
        audit_record(action="order.expired", target=order)
        return "expired"
    return "ignored"


def _fulfil(order: Order) -> str:
    order.status = Order.Status.PAID
    order.paid_at = timezone.now()
    order.save(update_fields=["status", "paid_at", "payment_intent_id", "updated_at"])
    outcomes = issue_licenses(order=order)
    for outcome in outcomes:
        if outcome.license is not None:
            post_license_sale(outcome.license)
    refused = [o for o in outcomes if o.refused_reason]
    audit_record(
        action="order.paid",
        actor=order.placed_by,
        target=order,
        data={
            "licenses": [o.license.uid for o in outcomes if o.license],
            "refused": {o.line.title: o.refused_reason for o in refused},
        },
    )
    if refused:
        from royalties.tasks import order_refund_lines_task

        line_ids = [o.line.pk for o in refused]
        order.status_reason = (
            " ".join(o.refused_reason for o in refused) + " Those lines are refunded."
        )
        order.save(update_fields=["status_reason", "updated_at"])
        transaction.on_commit(lambda: order_refund_lines_task.delay(order.pk, line_ids))
    from royalties.tasks import order_receipt_send_task

    transaction.on_commit(lambda: order_receipt_send_task.delay(order.pk))
    return "fulfilled" if not refused else "fulfilled_with_refunds"


def refund_lines(*, order_id: int, line_ids: list[int]) -> str:
    """Refund lines that could not be licensed (paid after the listing left
    the market). No sale was posted for them, so the ledger is untouched:
    the cash came in and goes back out at the provider."""
    from core.payments import get_gateway

    order = Order.objects.get(pk=order_id)
    lines = list(order.lines.filter(pk__in=line_ids, license__isnull=True))
    amount = sum(line.price_minor for line in lines)
    if not amount or not order.payment_intent_id:
        return "nothing_to_refund"
    refund = get_gateway().refund_create(
        payment_intent=order.payment_intent_id,
        amount_minor=amount,
        reason="Listing no longer available at payment time",
        idempotency_key=f"refund-{order.number}-lines-{'-'.join(map(str, sorted(line_ids)))}",
    )
    with transaction.atomic():
        locked = _lock_order(pk=order_id)
        if locked.refunded_minor < amount:
            locked.refunded_minor = amount
            locked.save(update_fields=["refunded_minor", "updated_at"])
            audit_record(
                action="order.lines_refunded",
                target=locked,
                data={"refund": refund.id, "amount": amount},
            )
    return "refunded"


@transaction.atomic
def charge_refunded(*, payment_intent: str | None, amount_refunded: int, amount: int) -> str:
    """A refund made at the provider (e.g. from the dashboard): the order's
    licenses are suspended and their sales reversed in the ledger."""
    if not payment_intent:
        return "no_payment_intent"
    order = _lock_order(payment_intent_id=payment_intent)
    if order is None:
        return "unknown_payment"
    if amount_refunded <= order.refunded_minor:
        return "own_refund"  # the refund we made for refused lines
    for license in License.objects.filter(order_line__order=order).exclude(
        status=License.Status.REVOKED
    ):
        license_set_status(
            license=license, status=License.Status.SUSPENDED, reason="Payment refunded."
        )
        sale = JournalEntry.objects.filter(idempotency_key=f"sale:license:{license.pk}").first()
        if sale is not None and not hasattr(sale, "reversed_by"):
            reversal = ledger.reverse_entry(
                entry=sale,
                memo=f"Refund of license {license.uid}",
                idempotency_key=f"refund:license:{license.pk}",
            )
            PerformerEarning.objects.bulk_create(
                [
                    PerformerEarning(
                        performer_id=earning.performer_id,
                        journal_entry=reversal,
                        license=license,
                        kind=PerformerEarning.Kind.REFUND,
                        gross_minor=-earning.gross_minor,
                        fee_minor=-earning.fee_minor,
                        net_minor=-earning.net_minor,
                        currency=earning.currency,
                    )
                    for earning in sale.earnings.all()
                ]
            )
    order.refunded_minor = amount_refunded
    if amount_refunded >= amount:
        order.status = Order.Status.REFUNDED
    order.save(update_fields=["refunded_minor", "status", "updated_at"])
    audit_record(action="order.refunded", target=order, data={"amount_refunded": amount_refunded})
    return "licenses_suspended"


@transaction.atomic
def dispute_created(*, payment_intent: str | None) -> str:
    if not payment_intent:
        return "no_payment_intent"
    order = _lock_order(payment_intent_id=payment_intent)
    if order is None:
        return "unknown_payment"
    for license in License.objects.filter(order_line__order=order, status=License.Status.ACTIVE):
        license_set_status(
            license=license, status=License.Status.SUSPENDED, reason="The payment is disputed."
        )
    order.status = Order.Status.DISPUTED
    order.save(update_fields=["status", "updated_at"])
    audit_record(action="order.disputed", target=order)
    return "licenses_suspended"
