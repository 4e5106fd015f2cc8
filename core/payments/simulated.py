"""The simulated gateway for `make run` with no Stripe key: no money moves.

It hands out ids and answers like Stripe would, but keeps no state of its
own: a simulated checkout is completed by the local confirmation page
(URL name ``simulated_checkout``), which says plainly that the payment is
simulated and then runs the same fulfilment as Stripe's webhook would.
Invoices are paid as soon as they are finalised, and transfers succeed at once.
``core.payments.get_gateway`` refuses to hand this out when DEBUG is off.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence

from django.urls import reverse

from core.payments.types import (
    CheckoutLine,
    CheckoutSession,
    ConnectAccount,
    Invoice,
    InvoiceItem,
    Refund,
    Transfer,
    WebhookEvent,
    WebhookSignatureError,
)


def _id(prefix: str, idempotency_key: str | None = None) -> str:
    # The same idempotency key gives the same id, as Stripe would answer.
    if idempotency_key:
        return f"{prefix}_sim_{hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]}"
    return f"{prefix}_sim_{secrets.token_hex(12)}"


class SimulatedGateway:
    simulated = True

    def customer_create(
        self, *, email: str, name: str, metadata: dict, idempotency_key: str
    ) -> str:
        return _id("cus", idempotency_key)

    def checkout_session_create(
        self,
        *,
        customer_id: str,
        lines: Sequence[CheckoutLine],
        success_url: str,
        cancel_url: str,
        metadata: dict,
        client_reference_id: str,
        idempotency_key: str,
    ) -> CheckoutSession:
        session_id = _id("cs", idempotency_key)
        return CheckoutSession(
            id=session_id,
            url=reverse("simulated_checkout", args=[session_id]),
            status="open",
            payment_status="unpaid",
            amount_total=sum(line.amount_minor * line.quantity for line in lines),
            currency=lines[0].currency if lines else "USD",
            metadata=dict(metadata),
        )

    def checkout_session_retrieve(self, session_id: str) -> CheckoutSession:
        return CheckoutSession(
            id=session_id,
            url="",
            status="open",
            payment_status="unpaid",
            amount_total=0,
            currency="",
        )

    def checkout_session_expire(self, session_id: str) -> CheckoutSession:
        return CheckoutSession(
            id=session_id,
            url="",
            status="expired",
            payment_status="unpaid",
            amount_total=0,
            currency="",
        )

    def refund_create(
        self, *, payment_intent: str, amount_minor: int | None, reason: str, idempotency_key: str
    ) -> Refund:
        return Refund(
            id=_id("re", idempotency_key),
            amount_minor=amount_minor or 0,
            currency="",
            status="succeeded",
        )

    def account_create(
        self, *, email: str, country: str, metadata: dict, idempotency_key: str
    ) -> ConnectAccount:
        return ConnectAccount(
            id=_id("acct", idempotency_key),
            charges_enabled=True,
            payouts_enabled=True,
            details_submitted=True,
        )

    def account_retrieve(self, account_id: str) -> ConnectAccount:
        return ConnectAccount(
            id=account_id, charges_enabled=True, payouts_enabled=True, details_submitted=True
        )

    def account_link_create(self, *, account_id: str, refresh_url: str, return_url: str) -> str:
        return return_url

    def transfer_create(
        self,
        *,
        amount_minor: int,
        currency: str,
        destination: str,
        metadata: dict,
        idempotency_key: str,
    ) -> Transfer:
        return Transfer(
            id=_id("tr", idempotency_key),
            amount_minor=amount_minor,
            currency=currency,
            destination=destination,
        )

    def invoice_create(
        self,
        *,
        customer_id: str,
        currency: str,
        days_until_due: int,
        metadata: dict,
        idempotency_key: str,
    ) -> Invoice:
        return Invoice(
            id=_id("in", idempotency_key), status="draft", amount_due=0, currency=currency
        )

    def invoice_item_create(
        self,
        *,
        customer_id: str,
        invoice_id: str,
        amount_minor: int,
        currency: str,
        description: str,
        metadata: dict,
        idempotency_key: str,
    ) -> InvoiceItem:
        return InvoiceItem(
            id=_id("ii", idempotency_key), amount_minor=amount_minor, currency=currency
        )

    def invoice_finalize(self, invoice_id: str) -> Invoice:
        return Invoice(id=invoice_id, status="paid", amount_due=0, currency="")

    def invoice_send(self, invoice_id: str) -> Invoice:
        return Invoice(id=invoice_id, status="paid", amount_due=0, currency="")

    def invoice_retrieve(self, invoice_id: str) -> Invoice:
        return Invoice(id=invoice_id, status="paid", amount_due=0, currency="")

    def webhook_event_construct(self, payload: bytes, signature_header: str) -> WebhookEvent:
        raise WebhookSignatureError(
            "Payments are simulated: there are no Stripe webhooks to accept."
        )
