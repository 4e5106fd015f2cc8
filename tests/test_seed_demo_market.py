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
    call_command("seed_demo")
    call_command("seed_demo_market")
    first = _counts()
    assert first[:4] == (9, 3, 1, 5)
    assert set(Recording.objects.values_list("preview_status", flat=True)) == {"ready"}
    # The revenue crossed the threshold: 20% of (14,500.00 − 10,000.00).
    revenue = PerformerEarning.objects.filter(kind="royalty").order_by("-gross_minor").first()
    assert revenue.gross_minor == 90_000

    call_command("seed_demo_market")
    assert _counts() == first
    for name, check in CHECKS:
        assert check() == [], name
    assert "Lumen Labs holds a license" in capsys.readouterr().out
