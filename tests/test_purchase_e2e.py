"""The whole purchase: cart → Stripe Checkout (the double) → signed webhook
→ licenses with frozen terms → a balanced sale in the ledger, split between
the performers. Once in-process (eager tasks), once with a real Celery
worker on Redis doing the fulfilment."""

from __future__ import annotations

import time

import pytest
from django.db import DatabaseError, transaction
from django.test import Client
from django.urls import reverse

from licensing.models import License, Order
from marketplace.services import ListingTerms, listing_update, splits_set
from royalties import ledger
from royalties.models import JournalEntry
from tests.celery_support import running_worker
from tests.factories import make_organization, make_performer, make_user
from tests.factories_licensing import post_event
from tests.factories_marketplace import make_published_listing, make_sellable_recording

PRICE = 12_347  # fee: 20 % rounded down = 2,469; performers share 9,878 (70/30)


def _market():
    staff = make_user(email="reviewer@residuals.example", is_staff=True)
    lead = make_performer(email="lead@performers.example", legal_name="Lena Lead")
    co = make_performer(email="co@performers.example", legal_name="Cole Co")
    recording = make_sellable_recording(lead, uses=("model_training", "evaluation"))
    splits_set(recording=recording, by=lead.user, shares=[(lead, 7_000), (co, 3_000)])
    listing = make_published_listing(
        lead, [recording], reviewer=staff, title="Shared grief", price_minor=PRICE
    )
    buyer = make_user(email="buyer@ai.example", full_name="Bo Buyer")
    organization = make_organization(owner=buyer, name="Feelings Inc")
    return {"lead": lead, "co": co, "listing": listing, "buyer": buyer, "org": organization}


def _checkout_in_the_browser(client, market, stripe_double) -> Order:
    client.force_login(market["buyer"])
    client.post(reverse("buyer_cart_add"), {"listing": market["listing"].pk})
    response = client.post(reverse("buyer_checkout", args=[market["org"].slug]))
    order = Order.objects.get()
    assert response["Location"] == f"{stripe_double.url}/pay/{order.checkout_session_id}"
    return order


def _balance(code_or_performer, bucket=None) -> int:
    if bucket:
        return ledger.balance(ledger.performer_account(code_or_performer, bucket, "USD"))
    return ledger.balance(ledger.platform_account(code_or_performer, "USD"))


def _check_the_sale(market, order):
    order.refresh_from_db()
    assert order.status == "paid" and order.receipt_sent_at is not None
    (license,) = License.objects.filter(order_line__order=order)
    assert (license.status, license.price_minor, license.currency) == ("active", PRICE, "USD")
    assert license.terms["permitted_uses"] == ["model_training"]
    assert license.terms["listing_title"] == "Shared grief"
    assert (license.ends_at - license.starts_at).days == 730

    (sale,) = JournalEntry.objects.filter(kind="sale")
    assert sum(sale.lines.values_list("amount_minor", flat=True)) == 0  # balanced
    assert _balance(ledger.PLATFORM_CASH) == PRICE
    assert _balance(ledger.PLATFORM_REVENUE) == -2_469
    # 9,878 × 70 % = 6,914.6 and × 30 % = 2,963.4: the leftover cent goes to
    # the larger dropped fraction (royalties.money, rule 2).
    assert _balance(market["lead"], "available") == -6_915
    assert _balance(market["co"], "available") == -2_963
    return license


@pytest.mark.django_db
def test_the_whole_purchase_through_the_stripe_double(client, stripe_double, mailoutbox):
    market = _market()
    order = _checkout_in_the_browser(client, market, stripe_double)
    page = client.get(reverse("buyer_order_detail", args=[market["org"].slug, order.number]))
    assert "Payment processing" in page.content.decode()

    event = stripe_double.pay_checkout_session(order.checkout_session_id)
    assert post_event(Client(), stripe_double, event).status_code == 200
    license = _check_the_sale(market, order)
    assert mailoutbox[-1].subject == f"Receipt for order {order.number}"
    assert license.uid in mailoutbox[-1].body

    # The listing changes afterwards: the license keeps the terms it was sold under.
    listing_update(
        listing=market["listing"],
        by=market["lead"].user,
        terms=ListingTerms(
            title="Shared grief (new cut)",
            price_minor=99_900,
            permitted_uses=["model_training", "evaluation"],
        ),
    )
    license.refresh_from_db()
    assert license.terms["permitted_uses"] == ["model_training"]
    assert license.terms["listing_title"] == "Shared grief"
    assert license.price_minor == PRICE
    with pytest.raises(DatabaseError), transaction.atomic():
        License.objects.filter(pk=license.pk).update(terms={**license.terms, "worldwide": False})

    page = client.get(reverse("buyer_license_detail", args=[market["org"].slug, license.uid]))
    html = page.content.decode()
    assert "model training — nothing else" in html and "$123.47" in html


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_whole_purchase_with_a_real_worker_on_redis(client, stripe_double, tmp_path):
    market = _market()
    order = _checkout_in_the_browser(client, market, stripe_double)
    event = stripe_double.pay_checkout_session(order.checkout_session_id)
    payload = stripe_double.event_json(event)
    from tests.stripe_double import sign_payload

    extra_env = {
        "STRIPE_SECRET_KEY": "sk_test_residuals",
        "STRIPE_API_BASE": stripe_double.url,
        "STRIPE_WEBHOOK_SECRETS": "whsec_test_residuals",
    }
    with running_worker(tmp_path, extra_env=extra_env) as worker:
        response = Client().post(
            "/webhooks/stripe/",
            payload,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=sign_payload(payload, "whsec_test_residuals"),
        )
        assert response.status_code == 200
        # The view only recorded and enqueued; the worker fulfils.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            order.refresh_from_db()
            if order.status == "paid" and order.receipt_sent_at is not None:
                break
            time.sleep(0.2)
        assert worker.wait_for_output("stripe_event_process_task"), worker.output()
    _check_the_sale(market, order)
    page = client.get(
        reverse("buyer_order_detail", args=[market["org"].slug, order.number])
    ).content.decode()
    assert "Payment confirmed — 1 license issued" in page
