"""Stripe, through the official library. Every method maps one provider
call to one dataclass; Stripe objects never leave this module."""

from __future__ import annotations

import json
from collections.abc import Sequence

import stripe

from core.payments.types import (
    CheckoutLine,
    CheckoutSession,
    ConnectAccount,
    GatewayError,
    Invoice,
    InvoiceItem,
    Refund,
    Transfer,
    WebhookEvent,
    WebhookSignatureError,
)

WEBHOOK_TOLERANCE_SECONDS = 300


def _session(obj) -> CheckoutSession:
    return CheckoutSession(
        id=obj.id,
        url=obj.url or "",
        status=obj.status,
        payment_status=obj.payment_status,
        amount_total=obj.amount_total or 0,
        currency=(obj.currency or "").upper(),
        payment_intent=obj.payment_intent if isinstance(obj.payment_intent, str) else None,
        metadata=obj.metadata.to_dict() if obj.metadata else {},
    )


def _invoice(obj) -> Invoice:
    return Invoice(
        id=obj.id,
        status=obj.status,
        amount_due=obj.amount_due or 0,
        currency=(obj.currency or "").upper(),
        hosted_url=getattr(obj, "hosted_invoice_url", None) or "",
    )


class StripeGateway:
    simulated = False

    def __init__(self, *, api_key: str, api_base: str = "", webhook_secrets: Sequence[str] = ()):
        options = {"max_network_retries": 2}
        if api_base:
            options["base_addresses"] = {"api": api_base}
        self.client = stripe.StripeClient(api_key, **options)
        self.webhook_secrets = [s for s in webhook_secrets if s]

    def _call(self, function, *args, **kwargs):
        try:
            return function(*args, **kwargs)
        except stripe.StripeError as exc:
            retryable = (
                isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError)
                or (getattr(exc, "http_status", None) or 0) >= 500
            )
            raise GatewayError(
                exc.user_message or str(exc),
                code=getattr(exc, "code", None) or exc.__class__.__name__,
                retryable=retryable,
            ) from exc

    # --- customers and checkout ------------------------------------------------------------
    def customer_create(
        self, *, email: str, name: str, metadata: dict, idempotency_key: str
    ) -> str:
        customer = self._call(
            self.client.v1.customers.create,
            params={"email": email, "name": name, "metadata": metadata},
            options={"idempotency_key": idempotency_key},
        )
        return customer.id

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
        params = {
            "mode": "payment",
            "customer": customer_id,
            "client_reference_id": client_reference_id,
            "success_url": success_url,
            "cancel_url": cancel_url,
            "metadata": metadata,
            "payment_intent_data": {"metadata": metadata},
            "line_items": [
                {
                    "quantity": line.quantity,
                    "price_data": {
                        "currency": line.currency.lower(),
                        "unit_amount": line.amount_minor,
                        "product_data": {
                            "name": line.name[:250],
                            **({"description": line.description[:500]} if line.description else {}),
                        },
                    },
                }
                for line in lines
            ],
        }
        session = self._call(
            self.client.v1.checkout.sessions.create,
            params=params,
            options={"idempotency_key": idempotency_key},
        )
        return _session(session)

    def checkout_session_retrieve(self, session_id: str) -> CheckoutSession:
        return _session(self._call(self.client.v1.checkout.sessions.retrieve, session_id))

    def checkout_session_expire(self, session_id: str) -> CheckoutSession:
        return _session(self._call(self.client.v1.checkout.sessions.expire, session_id))

    def refund_create(
        self, *, payment_intent: str, amount_minor: int | None, reason: str, idempotency_key: str
    ) -> Refund:
        params = {"payment_intent": payment_intent, "metadata": {"reason": reason[:450]}}
        if amount_minor is not None:
            params["amount"] = amount_minor
        refund = self._call(
            self.client.v1.refunds.create,
            params=params,
            options={"idempotency_key": idempotency_key},
        )
        return Refund(
            id=refund.id,
            amount_minor=refund.amount,
            currency=refund.currency.upper(),
            status=refund.status,
        )

    # --- Connect ------------------------------------------------------------------------------
    def account_create(
        self, *, email: str, country: str, metadata: dict, idempotency_key: str
    ) -> ConnectAccount:
        account = self._call(
            self.client.v1.accounts.create,
            params={
                "type": "express",
                "country": country,
                "email": email,
                "capabilities": {"transfers": {"requested": True}},
                "metadata": metadata,
            },
            options={"idempotency_key": idempotency_key},
        )
        return self._account(account)

    def account_retrieve(self, account_id: str) -> ConnectAccount:
        return self._account(self._call(self.client.v1.accounts.retrieve, account_id))

    def account_link_create(self, *, account_id: str, refresh_url: str, return_url: str) -> str:
        link = self._call(
            self.client.v1.account_links.create,
            params={
                "account": account_id,
                "refresh_url": refresh_url,
                "return_url": return_url,
                "type": "account_onboarding",
            },
        )
        return link.url

    @staticmethod
    def _account(account) -> ConnectAccount:
        return ConnectAccount(
            id=account.id,
            charges_enabled=bool(account.charges_enabled),
            payouts_enabled=bool(account.payouts_enabled),
            details_submitted=bool(account.details_submitted),
        )

    def transfer_create(
        self,
        *,
        amount_minor: int,
        currency: str,
        destination: str,
        metadata: dict,
        idempotency_key: str,
    ) -> Transfer:
        transfer = self._call(
            self.client.v1.transfers.create,
            params={
                "amount": amount_minor,
                "currency": currency.lower(),
                "destination": destination,
                "metadata": metadata,
            },
            options={"idempotency_key": idempotency_key},
        )
        return Transfer(
            id=transfer.id,
            amount_minor=transfer.amount,
            currency=transfer.currency.upper(),
            destination=transfer.destination,
        )

    # --- invoices -------------------------------------------------------------------------------
    def invoice_create(
        self,
        *,
        customer_id: str,
        currency: str,
        days_until_due: int,
        metadata: dict,
        idempotency_key: str,
    ) -> Invoice:
        invoice = self._call(
            self.client.v1.invoices.create,
            params={
                "customer": customer_id,
                "currency": currency.lower(),
                "collection_method": "send_invoice",
                "days_until_due": days_until_due,
                "auto_advance": False,
                "metadata": metadata,
            },
            options={"idempotency_key": idempotency_key},
        )
        return _invoice(invoice)

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
        item = self._call(
            self.client.v1.invoice_items.create,
            params={
                "customer": customer_id,
                "invoice": invoice_id,
                "amount": amount_minor,
                "currency": currency.lower(),
                "description": description[:500],
                "metadata": metadata,
            },
            options={"idempotency_key": idempotency_key},
        )
        return InvoiceItem(id=item.id, amount_minor=item.amount, currency=item.currency.upper())

    def invoice_finalize(self, invoice_id: str) -> Invoice:
        return _invoice(self._call(self.client.v1.invoices.finalize_invoice, invoice_id))

    def invoice_send(self, invoice_id: str) -> Invoice:
        return _invoice(self._call(self.client.v1.invoices.send_invoice, invoice_id))

    def invoice_retrieve(self, invoice_id: str) -> Invoice:
        return _invoice(self._call(self.client.v1.invoices.retrieve, invoice_id))

    # --- webhooks ---------------------------------------------------------------------------------
    def webhook_event_construct(self, payload: bytes, signature_header: str) -> WebhookEvent:
        """Verify the Stripe-Signature header against each configured secret
        (several are accepted while a secret is rotated; 300 s tolerance)."""
        if not self.webhook_secrets:
            raise WebhookSignatureError("No webhook signing secret is configured.")
        last_error: Exception | None = None
        for secret in self.webhook_secrets:
            try:
                stripe.Webhook.construct_event(
                    payload, signature_header, secret, tolerance=WEBHOOK_TOLERANCE_SECONDS
                )
            except stripe.SignatureVerificationError as exc:
                last_error = exc
                continue
            except ValueError as exc:
                raise WebhookSignatureError(f"The payload is not valid JSON: {exc}") from exc
            # The verified payload itself, as plain JSON: the library's objects turn some
            # fields (e.g. fx_rate) into Decimal, which a JSONField cannot store.
            data = json.loads(payload)
            return WebhookEvent(
                id=data["id"],
                type=data["type"],
                created=int(data.get("created") or 0),
                object=data.get("data", {}).get("object", {}),
                livemode=bool(data.get("livemode")),
            )
        raise WebhookSignatureError(str(last_error) if last_error else "Signature mismatch.")
