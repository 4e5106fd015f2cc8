"""The royalties issue's "done when", end to end: a buyer's pipeline reports
usage through the API (duplicates, a correction and bad events included), a
real worker on Redis tallies it past the revenue-share threshold, the buyer
is invoiced through the Stripe double, the signed invoice.paid webhook moves
the performer's royalties to available, and the balance, the statement and
ledger_check all agree to the cent."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.utils import timezone

from royalties import ledger
from royalties.invoicing import royalty_invoices_run
from royalties.models import RoyaltyInvoice, UsageEvent
from royalties.statements import performer_statement
from royalties.tally import untallied_count
from royalties.tasks import tally_usage_task
from tests.celery_support import running_worker
from tests.factories_licensing import bearer
from tests.factories_royalties import licensed_world
from tests.stripe_double import sign_payload

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _post(client, auth, events):
    return client.post("/api/v1/usage-events/", events, content_type="application/json", **auth)


def _statuses(response):
    return [(r["status"], (r.get("error") or {}).get("code")) for r in response.json()["results"]]


def test_usage_to_royalties_to_invoice_to_available_balance(client, stripe_double, tmp_path):
    world = licensed_world(
        stripe_double,
        price_minor=50_000,
        per_unit_rates={"training_run": {"amount_minor": 10_000, "per": 1}},
    )
    license, performer = world["license"], world["performer"]
    auth, _key = bearer(created_by=world["owner"], organization=world["organization"])
    now = timezone.now().isoformat()

    def event(event_id, **body):
        return {"event_id": event_id, "license": license.uid, "occurred_at": now, **body}

    first = [
        event("rev-1", metric="downstream_revenue", amount_minor=800_000, currency="USD"),
        event("train-1", metric="training_run", quantity=3, model="empathy-7b"),
        event("tune-1", metric="fine_tune_run", quantity=1),  # not permitted by the license
        event("rev-x", metric="downstream_revenue", amount_minor=5_000, currency="EUR"),
    ]
    response = _post(client, auth, first)
    assert response.status_code == 207
    assert _statuses(response) == [
        ("accepted", None),
        ("accepted", None),
        ("rejected", "metric_not_permitted"),
        ("rejected", "currency_mismatch"),
    ]
    second = [
        event("train-1", metric="training_run", quantity=3, model="empathy-7b"),  # resent
        event("train-1", metric="training_run", quantity=5),  # same id, other body
        event("fix-1", metric="training_run", quantity=-1, adjusts="train-1", note="dup run"),
        event("rev-2", metric="downstream_revenue", amount_minor=700_000, currency="USD"),
    ]
    assert _statuses(_post(client, auth, second)) == [
        ("duplicate", None),
        ("rejected", "conflicting_duplicate"),
        ("accepted", None),
        ("accepted", None),
    ]
    assert UsageEvent.objects.count() == 4

    with running_worker(tmp_path):
        assert tally_usage_task.delay().get(timeout=90)["events"] == 4
    assert untallied_count() == 0

    # Owed: 2 runs × $100 + 20 % of ($15,000 − $10,000) = $200 + $1,000.
    owed = 2 * 10_000 + 2000 * (1_500_000 - 1_000_000) // 10_000
    performer_net = owed - owed * 2000 // 10_000  # after the 20 % platform fee
    sale_net = 50_000 - 50_000 * 2000 // 10_000
    pending = ledger.performer_account(performer, "pending", "USD")
    available = ledger.performer_account(performer, "available", "USD")
    assert (-ledger.balance(pending), -ledger.balance(available)) == (performer_net, sale_net)

    (invoice,) = royalty_invoices_run(period=timezone.localdate())
    invoice.refresh_from_db()
    assert (invoice.amount_minor, invoice.status) == (owed, RoyaltyInvoice.Status.OPEN)
    assert stripe_double.get(invoice.stripe_invoice_id, "invoice")["amount_due"] == owed

    paid = stripe_double.event_json(stripe_double.pay_invoice(invoice.stripe_invoice_id))
    for _ in range(2):  # the second delivery is a replay and changes nothing
        response = client.post(
            "/webhooks/stripe/",
            paid,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=sign_payload(paid, "whsec_test_residuals"),
        )
        assert response.status_code == 200
    invoice.refresh_from_db()
    assert invoice.status == RoyaltyInvoice.Status.PAID
    assert (ledger.balance(pending), -ledger.balance(available)) == (0, sale_net + performer_net)

    statement = performer_statement(
        performer=performer, period=timezone.now().date(), currency="USD"
    )
    assert statement.opening_minor == 0
    assert statement.closing_available_minor == sale_net + performer_net
    assert statement.closing_pending_minor == 0

    out = io.StringIO()
    call_command("ledger_check", stdout=out)
    assert "All ledger invariants hold." in out.getvalue()
