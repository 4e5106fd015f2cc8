"""The Stripe double answers the official library as Stripe would, and
refuses what Stripe's OpenAPI description does not allow."""

from __future__ import annotations

import json

import pytest
import requests
import stripe

from tests.stripe_double import StripeDouble, sign_payload


@pytest.fixture(scope="module")
def double():
    server = StripeDouble().start()
    yield server
    server.stop()


@pytest.fixture
def client(double):
    double.reset()
    return stripe.StripeClient(
        "sk_test_double", base_addresses={"api": double.url}, max_network_retries=0
    )


def test_checkout_session_round_trip(client, double):
    customer = client.v1.customers.create(params={"email": "buyer@example.com", "name": "Acme"})
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "customer": customer.id,
            "success_url": "http://127.0.0.1/ok",
            "cancel_url": "http://127.0.0.1/cancel",
            "metadata": {"order": "42"},
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": "usd",
                        "unit_amount": 50_000,
                        "product_data": {"name": "License: Grief, held back"},
                    },
                },
                {
                    "quantity": 2,
                    "price_data": {
                        "currency": "usd",
                        "unit_amount": 1_000,
                        "product_data": {"name": "Pack"},
                    },
                },
            ],
        }
    )
    assert session.amount_total == 52_000
    assert session.status == "open"
    event = double.pay_checkout_session(session.id)
    assert event["type"] == "checkout.session.completed"
    assert event["data"]["object"]["payment_status"] == "paid"
    fetched = client.v1.checkout.sessions.retrieve(session.id)
    assert fetched.payment_intent.startswith("pi_")
    assert double.violations == []


def test_unknown_parameters_are_refused_with_stripes_error_shape(client, double):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.customers.create(params={"email": "a@example.com", "favourite_colour": "red"})
    assert caught.value.code == "parameter_unknown"
    assert caught.value.param == "favourite_colour"
    assert [v.code for v in double.violations] == ["parameter_unknown"]


def test_nested_unknown_parameters_are_refused(client, double):
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.checkout.sessions.create(
            params={
                "success_url": "http://x/ok",
                "line_items": [{"price_data": {"currency": "usd", "colour": "red"}}],
            }
        )
    assert double.violations[0].param == "line_items[0][price_data][colour]"


def test_missing_required_parameters_are_refused(client, double):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.account_links.create(params={"account": "acct_1"})
    assert caught.value.code == "parameter_missing"
    assert double.violations


def test_wrong_enum_values_are_refused(client, double):
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.checkout.sessions.create(
            params={"success_url": "http://x/ok", "mode": "barter", "line_items": []}
        )
    assert double.violations[0].code == "parameter_invalid_string"


def test_unknown_paths_and_methods_are_refused(double):
    double.reset()
    headers = {"Authorization": "Bearer sk_test_double"}
    assert requests.post(f"{double.url}/v1/teleport", headers=headers, timeout=5).status_code == 404
    response = requests.delete(f"{double.url}/v1/refunds", headers=headers, timeout=5)
    assert response.status_code == 405
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert len(double.violations) == 2


def test_idempotency_keys(client, double):
    params = {"email": "same@example.com"}
    options = {"idempotency_key": "payout-17"}
    first = client.v1.customers.create(params=params, options=options)
    again = client.v1.customers.create(params=params, options=options)
    assert first.id == again.id
    assert len(double.of_kind("customer")) == 1
    with pytest.raises(stripe.IdempotencyError):
        client.v1.customers.create(params={"email": "other@example.com"}, options=options)


def test_missing_objects_are_404(client):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.customers.retrieve("cus_nope")
    assert caught.value.http_status == 404


def test_transfers_need_an_onboarded_account(client, double):
    account = client.v1.accounts.create(params={"type": "express", "country": "US"})
    params = {"amount": 1000, "currency": "usd", "destination": account.id}
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.transfers.create(params=params)
    double.complete_onboarding(account.id)
    transfer = client.v1.transfers.create(params=params)
    assert transfer.amount == 1000


def test_invoices(client, double):
    customer = client.v1.customers.create(params={"email": "ap@example.com"})
    invoice = client.v1.invoices.create(
        params={"customer": customer.id, "collection_method": "send_invoice", "days_until_due": 30}
    )
    client.v1.invoice_items.create(
        params={"customer": customer.id, "invoice": invoice.id, "amount": 1234, "currency": "usd"}
    )
    finalized = client.v1.invoices.finalize_invoice(invoice.id)
    assert finalized.amount_due == 1234
    event = double.pay_invoice(invoice.id)
    assert event["type"] == "invoice.paid"
    assert double.violations == []


def test_webhook_signatures_verify_with_the_stripe_library(double):
    double.reset()
    event = double.event("charge.refunded", {"id": "ch_1", "object": "charge"})
    payload = double.event_json(event)
    header = sign_payload(payload, "whsec_test")
    parsed = stripe.Webhook.construct_event(payload, header, "whsec_test")
    assert parsed.id == event["id"]
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload, header, "whsec_other")
    assert json.loads(payload)["type"] == "charge.refunded"
