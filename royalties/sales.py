"""Money for license sales: fulfilment of paid orders, refunds and
disputes. Each function runs in one transaction with the order row locked,
so a webhook delivered twice, or two webhooks for one order at once, change
the order once.

Sale posting (DESIGN.md, "Money flows"): price P, platform fee
F = PLATFORM_FEE_BPS of P rounded down; debit platform:cash P, credit each
performer's available balance their part of P − F (royalties.splits), credit
platform:revenue F. A refund posts the reverse of the sale entry.

A handler that cannot act yet — a refund or dispute for a payment not yet
matched to a paid order — raises ``EventNotReady``; the webhook task retries
it with backoff and the sweeper requeues it (royalties.webhooks).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import PerformerProfile
from core.services import audit_record
from licensing.lifecycle import attestation_request
from licensing.models import License, Order
from licensing.services import issue_licenses, license_set_status
from royalties import ledger
from royalties.ledger import Line
from royalties.models import JournalEntry, PerformerEarning
from royalties.money import percentage_of
from royalties.splits import performer_parts

logger = logging.getLogger(__name__)


class EventNotReady(Exception):
    """The event is about something not recorded here yet (e.g. a refund
    that arrived before the checkout it refunds was fulfilled). Raised so the
    event is processed again later; ``code`` says what it waits for."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


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
    the cash came in and goes back out at the provider.

    The amount is recorded as requested, under the order lock, before the
    provider is asked: the charge.refunded event that follows may be
    processed before the provider's answer reaches us, and must then be
    recognised as our own refund, not one made from the dashboard."""
    from core.payments import GatewayError, get_gateway

    with transaction.atomic():
        order = _lock_order(pk=order_id)
        lines = list(order.lines.filter(pk__in=line_ids, license__isnull=True))
        amount = sum(line.price_minor for line in lines)
        if not amount or not order.payment_intent_id:
            return "nothing_to_refund"
        if order.refund_requested_minor < amount:
            order.refund_requested_minor = amount
            order.save(update_fields=["refund_requested_minor", "updated_at"])
            audit_record(
                action="order.lines_refund_requested",
                target=order,
                data={"lines": sorted(line.pk for line in lines), "amount": amount},
            )
    try:
        refund = get_gateway().refund_create(
            payment_intent=order.payment_intent_id,
            amount_minor=amount,
            reason="Listing no longer available at payment time",
            idempotency_key=f"refund-{order.number}-lines-{'-'.join(map(str, sorted(line_ids)))}",
        )
    except GatewayError as exc:
        if not exc.retryable:
            # No refund was made: stop expecting one, or a later dashboard
            # refund of the same amount would be taken for ours.
            with transaction.atomic():
                locked = _lock_order(pk=order_id)
                locked.refund_requested_minor = locked.refunded_minor
                locked.save(update_fields=["refund_requested_minor", "updated_at"])
                audit_record(
                    action="order.lines_refund_failed",
                    target=locked,
                    data={"amount": amount, "error": exc.code},
                )
        raise
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


def _order_for_payment(*, payment_intent: str | None, order_number: str | None) -> Order:
    """The locked order a charge or dispute is about: by its payment intent,
    else by the order number our checkout put in the payment's metadata.
    Raises EventNotReady while no such order is known or paid yet (the
    checkout.session.completed event may still be on its way)."""
    order = _lock_order(payment_intent_id=payment_intent) if payment_intent else None
    if order is None and order_number:
        order = _lock_order(number=order_number)
        if (
            order is not None
            and payment_intent
            and order.payment_intent_id
            and order.payment_intent_id != payment_intent
        ):
            logger.warning(
                "Payment %s names order %s, which was paid with %s",
                payment_intent,
                order_number,
                order.payment_intent_id,
            )
            order = None
    if order is None:
        raise EventNotReady(
            "unknown_payment", f"No order is known for payment {payment_intent or '(none)'} yet."
        )
    if order.status in (Order.Status.PENDING, Order.Status.PROCESSING):
        raise EventNotReady("order_not_paid", f"Order {order.number} is not fulfilled yet.")
    if payment_intent and not order.payment_intent_id:
        order.payment_intent_id = payment_intent
        order.save(update_fields=["payment_intent_id", "updated_at"])
    return order


_FULFILLED = (Order.Status.PAID, Order.Status.REFUNDED, Order.Status.DISPUTED)


def _suspend_for_payment(order: Order, reason: str) -> list[License]:
    """Suspend the order's licenses that are in force or about to be; an
    expired or revoked license keeps its status."""
    suspended = []
    for license in License.objects.filter(
        order_line__order=order, status__in=[License.Status.ACTIVE, License.Status.SCHEDULED]
    ):
        suspended.append(
            license_set_status(license=license, status=License.Status.SUSPENDED, reason=reason)
        )
    return suspended


@transaction.atomic
def charge_refunded(
    *,
    payment_intent: str | None,
    amount_refunded: int,
    amount: int,
    order_number: str | None = None,
) -> str:
    """A refund made at the provider (e.g. from the dashboard): the order's
    licenses are suspended, their sales reversed in the ledger, and deletion
    of the files is requested. Refunds we asked for ourselves
    (``refund_lines``) are recognised by the amount recorded before asking."""
    order = _order_for_payment(payment_intent=payment_intent, order_number=order_number)
    if order.status not in _FULFILLED:
        return "order_not_paid"
    ours = max(order.refunded_minor, order.refund_requested_minor)
    if amount_refunded <= ours:
        return "own_refund"
    _suspend_for_payment(order, "Payment refunded.")
    for license in License.objects.filter(order_line__order=order).exclude(
        status=License.Status.REVOKED
    ):
        if license.status == License.Status.SUSPENDED:
            attestation_request(license=license, reason="refunded")
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
def dispute_created(*, payment_intent: str | None, order_number: str | None = None) -> str:
    """A dispute suspends the order's licenses (staff may reinstate them if
    the dispute is won); deletion is requested when the term ends."""
    order = _order_for_payment(payment_intent=payment_intent, order_number=order_number)
    if order.status not in _FULFILLED:
        return "order_not_paid"
    _suspend_for_payment(order, "The payment is disputed.")
    order.status = Order.Status.DISPUTED
    order.save(update_fields=["status", "updated_at"])
    audit_record(action="order.disputed", target=order)
    return "licenses_suspended"
