"""What crosses the gateway boundary: plain, frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field


class GatewayError(Exception):
    """The provider refused or failed. ``code`` is the provider's error code."""

    def __init__(self, message: str, *, code: str = "gateway_error", retryable: bool = False):
        super().__init__(message)
        self.message = message
        self.code = code
        self.retryable = retryable


class WebhookSignatureError(Exception):
    pass


@dataclass(frozen=True)
class CheckoutLine:
    name: str
    amount_minor: int
    currency: str
    description: str = ""
    quantity: int = 1


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str
    status: str  # open, complete, expired
    payment_status: str  # paid, unpaid, no_payment_required
    amount_total: int
    currency: str
    payment_intent: str | None = None
    metadata: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Refund:
    id: str
    amount_minor: int
    currency: str
    status: str


@dataclass(frozen=True)
class ConnectAccount:
    id: str
    charges_enabled: bool
    payouts_enabled: bool
    details_submitted: bool


@dataclass(frozen=True)
class Transfer:
    id: str
    amount_minor: int
    currency: str
    destination: str


@dataclass(frozen=True)
class Invoice:
    id: str
    status: str  # draft, open, paid, void, uncollectible
    amount_due: int
    currency: str
    hosted_url: str = ""


@dataclass(frozen=True)
class InvoiceItem:
    id: str
    amount_minor: int
    currency: str


@dataclass(frozen=True)
class WebhookEvent:
    id: str
    type: str
    created: int
    object: dict
    livemode: bool = False
