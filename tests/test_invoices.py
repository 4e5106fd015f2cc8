"""Royalty invoices: tally → invoice through the gateway → paid by webhook →
the performer's royalties become available; ledger_check holds throughout."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.utils import timezone

from licensing.models import License
from royalties import ledger
from royalties.invoicing import royalty_invoices_run
from royalties.models import LicenseUsageTotals, RoyaltyInvoice
from royalties.tally import tally_usage
from royalties.usage import usage_events_ingest
from tests.factories_royalties import licensed_world
from tests.stripe_double import sign_payload

pytestmark = pytest.mark.django_db


def _webhook(client, stripe_double, event):
    payload = stripe_double.event_json(event)
    return client.post(
        "/webhooks/stripe/",
        payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign_payload(payload, "whsec_test_residuals"),
    )


@pytest.fixture
def accrued(stripe_double):
    world = licensed_world(stripe_double)
    usage_events_ingest(
        organization_id=world["organization"].pk,
        events=[
            {
                "event_id": "rev-1",
                "license": world["license"].uid,
                "metric": "downstream_revenue",
                "amount_minor": 3_000_000,  # $30,000: $20,000 above the threshold
                "currency": "USD",
                "occurred_at": timezone.now().isoformat(),
            }
        ],
    )
    tally_usage()
    return world


def _available(world):
    return ledger.balance(ledger.performer_account(world["performer"], "available", "USD"))


def _pending(world):
    return ledger.balance(ledger.performer_account(world["performer"], "pending", "USD"))


def _ledger_check() -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("ledger_check", stdout=out, stderr=io.StringIO())
    except SystemExit as exc:
        return exc.code, out.getvalue()
    return 0, out.getvalue()


def test_invoice_paid_by_webhook_moves_royalties_to_available(
    client, stripe_double, accrued, django_capture_on_commit_callbacks
):
    world = accrued
    owed = 2000 * 2_000_000 // 10_000  # 20 % of $20,000 = $4,000
    pending_before, available_before = _pending(world), _available(world)
    assert pending_before == -(owed - owed * 2000 // 10_000)

    (invoice,) = royalty_invoices_run(period=timezone.localdate())
    invoice.refresh_from_db()
    assert (invoice.amount_minor, invoice.status) == (owed, RoyaltyInvoice.Status.OPEN)
    remote = stripe_double.get(invoice.stripe_invoice_id, "invoice")
    assert remote["amount_due"] == owed
    assert [line["metadata"]["metric"] for line in remote["lines"]["data"]] == [
        "downstream_revenue"
    ]
    assert royalty_invoices_run(period=timezone.localdate()) == []  # once per month

    with django_capture_on_commit_callbacks(execute=True):
        event = stripe_double.pay_invoice(invoice.stripe_invoice_id)
        response = _webhook(client, stripe_double, event)
    assert response.status_code == 200
    invoice.refresh_from_db()
    assert invoice.status == RoyaltyInvoice.Status.PAID
    assert _pending(world) == 0
    assert _available(world) == available_before + pending_before
    assert ledger.balance(ledger.buyer_receivable(world["organization"], "USD")) == 0

    with django_capture_on_commit_callbacks(execute=True):  # replayed: nothing more
        _webhook(client, stripe_double, event)
    assert _pending(world) == 0
    assert _ledger_check() == (0, _ledger_check()[1])
    assert "All ledger invariants hold." in _ledger_check()[1]


def test_failed_invoice_payment_can_suspend_licenses(
    client, stripe_double, accrued, settings, django_capture_on_commit_callbacks
):
    settings.ROYALTY_SUSPEND_LICENSES_ON_FAILED_PAYMENT = True
    (invoice,) = royalty_invoices_run(period=timezone.localdate())
    invoice.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        _webhook(
            client, stripe_double, stripe_double.fail_invoice_payment(invoice.stripe_invoice_id)
        )
    invoice.refresh_from_db()
    assert (invoice.status, invoice.failure_count) == (RoyaltyInvoice.Status.FAILED, 1)
    assert License.objects.get().status == License.Status.SUSPENDED


def test_ledger_check_fails_on_a_broken_invariant(stripe_double, accrued):
    assert _ledger_check()[0] == 0
    LicenseUsageTotals.objects.update(royalty_owed_minor=1)  # totals no longer match accruals
    code, output = _ledger_check()
    assert code == 1
    assert "FAIL  royalty accruals equal the usage totals" in output


def test_simulated_gateway_pays_invoices_at_once(settings, stripe_double, accrued):
    settings.STRIPE_SECRET_KEY = ""
    settings.DEBUG = True
    world = accrued
    (invoice,) = royalty_invoices_run(period=timezone.localdate())
    invoice.refresh_from_db()
    assert invoice.status == RoyaltyInvoice.Status.PAID
    assert _pending(world) == 0


def test_overdue_invoices_suspend_licenses_until_paid(
    client, stripe_double, accrued, settings, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    import time_machine

    from core.models import AuditEvent
    from royalties.invoicing import royalty_invoices_enforce_overdue

    settings.ROYALTY_SUSPEND_LICENSES_ON_FAILED_PAYMENT = True
    world = accrued
    (invoice,) = royalty_invoices_run(period=timezone.localdate())
    invoice.refresh_from_db()
    assert royalty_invoices_enforce_overdue() == {"overdue": 0, "suspended": 0}  # not yet due
    assert License.objects.get().status == License.Status.ACTIVE

    late = invoice.due_at + timedelta(days=1)
    with time_machine.travel(late):
        assert royalty_invoices_enforce_overdue() == {"overdue": 1, "suspended": 1}
        assert royalty_invoices_enforce_overdue() == {"overdue": 1, "suspended": 0}  # once
    invoice.refresh_from_db()
    assert invoice.overdue_at is not None
    assert AuditEvent.objects.filter(action="royalty_invoice.overdue").count() == 1
    license = License.objects.get()
    assert license.status == License.Status.SUSPENDED

    with django_capture_on_commit_callbacks(execute=True):
        _webhook(client, stripe_double, stripe_double.pay_invoice(invoice.stripe_invoice_id))
    license.refresh_from_db()
    assert license.status == License.Status.ACTIVE
    assert invoice.suspensions.get().lifted_at is not None

    assert world["license"].pk == license.pk


def test_paying_one_of_two_unpaid_invoices_keeps_the_license_suspended(
    client, stripe_double, accrued, settings, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    import time_machine

    from royalties.invoicing import royalty_invoices_enforce_overdue

    settings.ROYALTY_SUSPEND_LICENSES_ON_FAILED_PAYMENT = True
    world = accrued
    (first,) = royalty_invoices_run(period=timezone.localdate())
    first.refresh_from_db()
    usage_events_ingest(
        organization_id=world["organization"].pk,
        events=[
            {
                "event_id": "rev-2",
                "license": world["license"].uid,
                "metric": "downstream_revenue",
                "amount_minor": 100_000,
                "currency": "USD",
                "occurred_at": timezone.now().isoformat(),
            }
        ],
    )
    tally_usage()
    next_month = (timezone.localdate().replace(day=28) + timedelta(days=5)).replace(day=1)
    with time_machine.travel(timezone.now() + timedelta(days=40)):
        (second,) = royalty_invoices_run(period=next_month)
    second.refresh_from_db()
    with time_machine.travel(second.due_at + timedelta(days=1)):
        assert royalty_invoices_enforce_overdue() == {"overdue": 2, "suspended": 1}
    with django_capture_on_commit_callbacks(execute=True):
        _webhook(client, stripe_double, stripe_double.pay_invoice(first.stripe_invoice_id))
    assert License.objects.get().status == License.Status.SUSPENDED  # the second still holds it
    with django_capture_on_commit_callbacks(execute=True):
        _webhook(client, stripe_double, stripe_double.pay_invoice(second.stripe_invoice_id))
    assert License.objects.get().status == License.Status.ACTIVE
    assert _ledger_check()[0] == 0


def test_a_license_suspended_for_another_reason_stays_suspended_when_paid(
    client, stripe_double, accrued, settings, django_capture_on_commit_callbacks
):
    from licensing.services import license_set_status

    settings.ROYALTY_SUSPEND_LICENSES_ON_FAILED_PAYMENT = True
    (invoice,) = royalty_invoices_run(period=timezone.localdate())
    invoice.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        _webhook(
            client, stripe_double, stripe_double.fail_invoice_payment(invoice.stripe_invoice_id)
        )
    license = License.objects.get()
    assert license.status == License.Status.SUSPENDED
    license_set_status(license=license, status=License.Status.ACTIVE, reason="Staff review.")
    license_set_status(license=license, status=License.Status.SUSPENDED, reason="Takedown.")
    with django_capture_on_commit_callbacks(execute=True):
        _webhook(client, stripe_double, stripe_double.pay_invoice(invoice.stripe_invoice_id))
    license.refresh_from_db()
    assert (license.status, license.status_reason) == (License.Status.SUSPENDED, "Takedown.")
