from __future__ import annotations

import pytest
from django.core.management import call_command

from licensing.models import License
from marketplace.models import Listing, Recording
from royalties.checks import CHECKS
from royalties.models import JournalEntry, PerformerEarning, UsageEvent

pytestmark = pytest.mark.django_db(transaction=True)


def _counts():
    return (
        Recording.objects.count(),
        Listing.objects.filter(status=Listing.Status.PUBLISHED).count(),
        License.objects.count(),
        UsageEvent.objects.count(),
        JournalEntry.objects.count(),
    )


def test_demo_market_loads_once_and_balances(stripe_double, settings, tmp_path, capsys):
    settings.MEDIA_ROOT = tmp_path
    # As under `make run`: no Stripe key, so the simulated gateway.
    settings.STRIPE_SECRET_KEY = ""
    settings.DEBUG = True
    call_command("seed_demo")
    call_command("seed_demo_market")
    first = _counts()
    assert first[:4] == (9, 3, 1, 6)
    assert set(Recording.objects.values_list("preview_status", flat=True)) == {"ready"}
    # The revenue crossed the threshold: 20% of (14,500.00 − 10,000.00).
    revenue = PerformerEarning.objects.filter(kind="royalty").order_by("-gross_minor").first()
    assert revenue.gross_minor == 90_000

    # This month's royalties were invoiced and paid (simulated); the revenue
    # reported after the invoice waits, pending, for the next one.
    from royalties import ledger
    from royalties.models import RoyaltyInvoice

    invoice = RoyaltyInvoice.objects.get()
    assert invoice.status == RoyaltyInvoice.Status.PAID
    performer = revenue.performer
    assert ledger.balance(ledger.performer_account(performer, "pending", "USD")) < 0
    available = ledger.balance(ledger.performer_account(performer, "available", "USD"))

    call_command("seed_demo_market")
    assert _counts() == first
    assert RoyaltyInvoice.objects.count() == 1
    assert ledger.balance(ledger.performer_account(performer, "available", "USD")) == available
    for name, check in CHECKS:
        assert check() == [], name
    assert "Lumen Labs holds a license" in capsys.readouterr().out
