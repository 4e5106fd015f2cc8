"""The payment gateway: the only code that talks to Stripe.

Callers use ``get_gateway()`` and the small dataclasses below; no Stripe
object crosses this boundary. With ``STRIPE_SECRET_KEY`` set, the gateway is
``StripeGateway`` (the official ``stripe`` library, its API base taken from
``STRIPE_API_BASE`` so tests can point it at the Stripe double). Without a
key, ``SimulatedGateway`` stands in for `make run`: it never moves money,
every page says so, and it refuses to run when DEBUG is off.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

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

__all__ = [
    "CheckoutLine",
    "CheckoutSession",
    "ConnectAccount",
    "GatewayError",
    "Invoice",
    "InvoiceItem",
    "Refund",
    "Transfer",
    "WebhookEvent",
    "WebhookSignatureError",
    "get_gateway",
    "payments_simulated",
]


def payments_simulated() -> bool:
    return not settings.STRIPE_SECRET_KEY


def get_gateway():
    if settings.STRIPE_SECRET_KEY:
        from core.payments.stripe_gateway import StripeGateway

        return StripeGateway(
            api_key=settings.STRIPE_SECRET_KEY,
            api_base=settings.STRIPE_API_BASE,
            webhook_secrets=settings.STRIPE_WEBHOOK_SECRETS,
        )
    if not settings.DEBUG:
        raise ImproperlyConfigured(
            "No STRIPE_SECRET_KEY is configured and DEBUG is off: the simulated payment "
            "gateway only runs for local development. Set STRIPE_SECRET_KEY."
        )
    from core.payments.simulated import SimulatedGateway

    return SimulatedGateway()
