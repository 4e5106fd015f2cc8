"""The gateway module against the Stripe double, and the simulated gateway's limits."""

from __future__ import annotations

import json
import time

import pytest
from django.core.exceptions import ImproperlyConfigured

from core.payments import CheckoutLine, GatewayError, WebhookSignatureError, get_gateway
from core.payments.simulated import SimulatedGateway
from core.payments.stripe_gateway import StripeGateway
from tests.stripe_double import sign_payload


@pytest.fixture
def gateway(stripe_double):
    return StripeGateway(
        api_key="sk_test_gateway",
        api_base=stripe_double.url,
        webhook_secrets=["whsec_old", "whsec_new"],
    )


def test_checkout_through_the_gateway(gateway, stripe_double):
    customer = gateway.customer_create(
        email="b@example.com", name="Acme", metadata={"organization": "1"}, idempotency_key="org-1"
    )
    session = gateway.checkout_session_create(
        customer_id=customer,
        lines=[
            CheckoutLine(name="License A", amount_minor=1500, currency="USD", description="2 years")
        ],
        success_url="http://127.0.0.1:8000/ok",
        cancel_url="http://127.0.0.1:8000/cancel",
        metadata={"order": "7"},
        client_reference_id="order-7",
        idempotency_key="checkout-order-7",
    )
    assert (session.amount_total, session.currency, session.status) == (1500, "USD", "open")
    assert session.metadata == {"order": "7"}
    stripe_double.pay_checkout_session(session.id)
    paid = gateway.checkout_session_retrieve(session.id)
    assert paid.payment_status == "paid" and paid.payment_intent
    refund = gateway.refund_create(
        payment_intent=paid.payment_intent,
        amount_minor=None,
        reason="consent withdrawn",
        idempotency_key="r1",
    )
    assert refund.amount_minor == 1500


def test_provider_errors_become_gateway_errors(gateway):
    with pytest.raises(GatewayError) as caught:
        gateway.checkout_session_retrieve("cs_test_missing")
    assert caught.value.code == "resource_missing"


def test_connect_and_transfers(gateway, stripe_double):
    account = gateway.account_create(
        email="p@example.com", country="GB", metadata={}, idempotency_key="a1"
    )
    assert not account.payouts_enabled
    assert gateway.account_link_create(
        account_id=account.id, refresh_url="http://x/refresh", return_url="http://x/return"
    )
    stripe_double.complete_onboarding(account.id)
    assert gateway.account_retrieve(account.id).payouts_enabled
    transfer = gateway.transfer_create(
        amount_minor=2500,
        currency="USD",
        destination=account.id,
        metadata={"payout": "9"},
        idempotency_key="payout-9",
    )
    again = gateway.transfer_create(
        amount_minor=2500,
        currency="USD",
        destination=account.id,
        metadata={"payout": "9"},
        idempotency_key="payout-9",
    )
    assert transfer.id == again.id  # one transfer, however often it is asked for


def test_invoices(gateway):
    customer = gateway.customer_create(
        email="ap@example.com", name="Acme", metadata={}, idempotency_key="c"
    )
    invoice = gateway.invoice_create(
        customer_id=customer, currency="USD", days_until_due=30, metadata={}, idempotency_key="i"
    )
    gateway.invoice_item_create(
        customer_id=customer,
        invoice_id=invoice.id,
        amount_minor=4200,
        currency="USD",
        description="Royalties",
        metadata={},
        idempotency_key="ii",
    )
    assert gateway.invoice_finalize(invoice.id).amount_due == 4200


def _event(stripe_double):
    event = stripe_double.event("charge.refunded", {"id": "ch_1", "object": "charge"})
    return stripe_double.event_json(event).encode(), event


@pytest.mark.parametrize("secret", ["whsec_old", "whsec_new"])
def test_webhooks_verify_with_any_configured_secret(gateway, stripe_double, secret):
    payload, event = _event(stripe_double)
    parsed = gateway.webhook_event_construct(payload, sign_payload(payload.decode(), secret))
    assert (parsed.id, parsed.type, parsed.object["id"]) == (event["id"], "charge.refunded", "ch_1")


def test_webhooks_with_a_wrong_or_stale_signature_are_refused(gateway, stripe_double):
    payload, _ = _event(stripe_double)
    with pytest.raises(WebhookSignatureError):
        gateway.webhook_event_construct(payload, sign_payload(payload.decode(), "whsec_intruder"))
    stale = sign_payload(payload.decode(), "whsec_new", timestamp=int(time.time()) - 301)
    with pytest.raises(WebhookSignatureError):
        gateway.webhook_event_construct(payload, stale)
    with pytest.raises(WebhookSignatureError):
        gateway.webhook_event_construct(payload, "")
    tampered = json.loads(payload)
    tampered["type"] = "charge.succeeded"
    signature = sign_payload(payload.decode(), "whsec_new")
    with pytest.raises(WebhookSignatureError):
        gateway.webhook_event_construct(json.dumps(tampered).encode(), signature)


def test_the_simulated_gateway_refuses_to_run_without_debug(settings):
    settings.STRIPE_SECRET_KEY = ""
    settings.DEBUG = False
    with pytest.raises(ImproperlyConfigured):
        get_gateway()
    settings.DEBUG = True
    assert isinstance(get_gateway(), SimulatedGateway)


# --- The system check: a deployment without a real gateway is refused at start -------------------


def _gateway_issues() -> list[str]:
    from django.core import checks

    return [message.id for message in checks.run_checks(tags=["payments"])]


@pytest.mark.parametrize(
    ("residuals_env", "debug", "key", "secrets", "expected"),
    [
        pytest.param("production", False, "", [], ["residuals.payments.E001"], id="no-key"),
        pytest.param("development", True, "", [], [], id="make-run"),
        pytest.param("test", False, "", [], [], id="test-suite"),
        pytest.param(
            "production", False, "sk_live_x", [], ["residuals.payments.W001"], id="no-secrets"
        ),
        pytest.param("production", False, "sk_live_x", ["", ""], ["residuals.payments.W001"]),
        pytest.param("production", False, "sk_live_x", ["whsec_1"], [], id="configured"),
    ],
)
def test_the_gateway_system_check(settings, residuals_env, debug, key, secrets, expected):
    settings.RESIDUALS_ENV = residuals_env
    settings.DEBUG = debug
    settings.STRIPE_SECRET_KEY = key
    settings.STRIPE_WEBHOOK_SECRETS = secrets
    assert _gateway_issues() == expected


def test_the_check_is_an_error_and_the_webhook_one_a_warning(settings):
    from django.core import checks

    from core.payments.checks import payment_gateway_check

    settings.RESIDUALS_ENV, settings.DEBUG, settings.STRIPE_SECRET_KEY = "production", False, ""
    (error,) = payment_gateway_check()
    assert error.level == checks.ERROR and "STRIPE_SECRET_KEY" in error.msg
    settings.STRIPE_SECRET_KEY, settings.STRIPE_WEBHOOK_SECRETS = "sk_live_x", []
    (warning,) = payment_gateway_check()
    assert warning.level == checks.WARNING and "STRIPE_WEBHOOK_SECRETS" in warning.msg
