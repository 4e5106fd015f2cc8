"""The staff royalties page: platform totals that agree with the ledger,
unpaid and overdue invoices, reuse caps exceeded (and marking them
reviewed), the tally's state; staff only."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from core.models import AuditEvent
from royalties import ledger, reports
from royalties.invoicing import royalty_invoice_paid, royalty_invoices_run
from royalties.models import CapBreach, RoyaltyAccrual, RoyaltyInvoice
from royalties.tally import tally_usage
from royalties.usage import usage_events_ingest
from tests.factories import make_organization, make_performer, make_user
from tests.factories_licensing import bearer
from tests.factories_royalties import buy, licensed_world
from tests.listings_support import give_mfa_session

pytestmark = pytest.mark.django_db

RATES = {"training_run": {"amount_minor": 2_000, "per": 1}}


def _report(organization, license, prefix: str, *, runs: int = 3, revenue: int = 2_000_000):
    now = timezone.now().isoformat()
    events = [
        {
            "event_id": f"{prefix}-run-{n}",
            "license": license.uid,
            "metric": "training_run",
            "quantity": 1,
            "occurred_at": now,
        }
        for n in range(runs)
    ] + [
        {
            "event_id": f"{prefix}-rev",
            "license": license.uid,
            "metric": "downstream_revenue",
            "amount_minor": revenue,
            "currency": "USD",
            "occurred_at": now,
        }
    ]
    results = usage_events_ingest(organization_id=organization.pk, events=events)
    assert all(r.status == "accepted" for r in results), [r.as_dict() for r in results]


@pytest.fixture
def world(stripe_double):
    """One license with a reuse cap of 2 models; 3 training runs and $20,000
    of revenue reported and tallied, then invoiced (open)."""
    world = licensed_world(
        stripe_double, per_unit_rates=RATES, reuse_caps={"max_models_trained": 2}
    )
    _report(world["organization"], world["license"], "a")
    tally_usage()
    (world["invoice"],) = royalty_invoices_run(period=timezone.localdate())
    world["invoice"].refresh_from_db()
    return world


def _usd(figures) -> reports.StaffMoney:
    (usd,) = [f for f in figures if f.currency == "USD"]
    return usd


def test_totals_agree_with_the_ledger(world, stripe_double):
    performer, org = world["performer"], world["organization"]
    owed = 3 * 2_000 + 2000 * 1_000_000 // 10_000  # runs + 20 % of $10,000 above the threshold
    money = _usd(reports.staff_money())
    assert money.accrued == owed == sum(a.amount_minor for a in RoyaltyAccrual.objects.all())
    assert (money.invoiced, money.paid) == (owed, 0)
    assert money.receivable == owed == ledger.balance(ledger.buyer_receivable(org, "USD"))
    assert money.platform_revenue == -ledger.balance(
        ledger.platform_account(ledger.PLATFORM_REVENUE, "USD")
    )
    pending = ledger.performer_account(performer, "pending", "USD")
    available = ledger.performer_account(performer, "available", "USD")
    assert money.performers_pending == -ledger.balance(pending) > 0
    assert money.performers_available == -ledger.balance(available) > 0  # the sale
    assert money.performers_in_transit == 0
    # Every royalty is split between the performer's pending balance and the fee.
    sale_fee = world["license"].price_minor * 2000 // 10_000
    assert money.performers_pending + (money.platform_revenue - sale_fee) == owed

    invoice = world["invoice"]
    stripe_double.pay_invoice(invoice.stripe_invoice_id)
    royalty_invoice_paid(provider_invoice_id=invoice.stripe_invoice_id)
    paid = _usd(reports.staff_money())
    assert (paid.invoiced, paid.paid, paid.receivable, paid.performers_pending) == (
        owed,
        owed,
        0,
        0,
    )
    assert paid.performers_available == money.performers_available + money.performers_pending


def test_the_page_shows_overdue_invoices_breaches_and_the_tally(client, world):
    invoice, license = world["invoice"], world["license"]
    _report(world["organization"], license, "b", runs=1, revenue=1)  # not tallied yet
    with time_machine.travel(invoice.due_at + timedelta(days=3)):
        give_mfa_session(client, world["staff"])
        page = client.get(reverse("staff_royalties"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Deep Feelings AI" in html and f"RI-{invoice.pk}" in html
    assert "ry-row--overdue" in html and "1 overdue" in html and "Overdue" in html
    assert license.uid in html and "max_models_trained" in html and "Mark reviewed" in html
    assert world["performer"].stage_name in html
    assert "<strong>2</strong> events waiting to be tallied" in html
    context = page.context
    assert [i.pk for i in context["unpaid"]] == [invoice.pk] and context["unpaid"][0].overdue
    assert context["untallied"] == 2
    assert context["breaches"][0]["over_by"] == 1
    batch = context["batches"][0]  # the range of event ids it counted
    assert f"{batch.from_id + 1}–{batch.through_id}" in html


def test_an_invoice_not_yet_due_is_not_overdue(client, world):
    give_mfa_session(client, world["staff"])
    page = client.get(reverse("staff_royalties"))
    assert page.context["unpaid"][0].overdue is False
    assert "ry-row--overdue" not in page.content.decode()


def test_staff_mark_a_cap_breach_reviewed_once(client, world):
    breach = CapBreach.objects.get()
    give_mfa_session(client, world["staff"])
    url = reverse("staff_cap_breach_review", args=[breach.pk])
    response = client.post(url, {"note": "Buyer confirmed a third model; amendment pending."})
    assert response.status_code == 302 and response["Location"] == reverse("staff_royalties")
    breach.refresh_from_db()
    assert breach.resolved_at is not None
    audit = AuditEvent.objects.get(action="usage.cap_breach_reviewed")
    assert audit.actor == world["staff"] and audit.data["cap"] == "max_models_trained"
    assert audit.data["note"].startswith("Buyer confirmed")

    first = breach.resolved_at
    client.post(url)
    breach.refresh_from_db()
    assert breach.resolved_at == first
    assert AuditEvent.objects.filter(action="usage.cap_breach_reviewed").count() == 1

    page = client.get(reverse("staff_royalties"))
    assert page.context["breach_count"] == 0 and page.context["breaches"] == []
    assert [row["breach"].pk for row in page.context["reviewed_breaches"]] == [breach.pk]
    assert client.get(url).status_code == 405  # a change is a POST
    assert client.post(reverse("staff_cap_breach_review", args=[999_999])).status_code == 404


def test_the_staff_dashboard_links_here(client, world):
    give_mfa_session(client, world["staff"])
    html = client.get(reverse("staff_dashboard")).content.decode()
    assert f'href="{reverse("staff_royalties")}"' in html


# --- Who may see it --------------------------------------------------------------------------

# (GET page, POST review) for each caller. Staff pages send visitors to sign
# in, signed-in people who are not staff get 403, staff without a second
# factor are sent to set one up; API keys do not open web pages.
MATRIX = {
    "anonymous": ("login", "login"),
    "performer of the license": (403, 403),
    "other performer": (403, 403),
    "member of the buyer": (403, 403),
    "member of another organization": (403, 403),
    "buyer org key": ("login", "login"),
    "other org key": ("login", "login"),
    "performer key": ("login", "login"),
    "staff": (200, 302),
    "staff without a second factor": ("mfa", "mfa"),
}


def _sign_in(client, world, who) -> dict:
    if who == "anonymous":
        return {}
    if who == "staff":
        give_mfa_session(client, world["staff"])
        return {}
    if who.endswith("key"):
        if who == "buyer org key":
            return bearer(created_by=world["owner"], organization=world["organization"])[0]
        if who == "performer key":
            return bearer(created_by=world["performer"].user, performer=world["performer"])[0]
        other = make_user(email="rival@rival.example")
        return bearer(created_by=other, organization=make_organization(owner=other, name="R"))[0]
    user = {
        "performer of the license": lambda: world["performer"].user,
        "other performer": lambda: make_performer(email="o@performers.example").user,
        "member of the buyer": lambda: world["owner"],
        "member of another organization": lambda: (
            make_organization(owner=make_user(email="rival@rival.example"), name="Rival")
            .memberships.get()
            .user
        ),
        "staff without a second factor": lambda: world["staff"],
    }[who]()
    client.force_login(user)
    return {}


def _check(response, expected):
    if expected == "login":
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    elif expected == "mfa":
        assert response.status_code == 302 and "/accounts/2fa/" in response["Location"]
    else:
        assert response.status_code == expected


@pytest.mark.parametrize("who", list(MATRIX))
def test_permission_matrix(client, world, who):
    headers = _sign_in(client, world, who)
    page, review = MATRIX[who]
    _check(client.get(reverse("staff_royalties"), **headers), page)
    breach = CapBreach.objects.get()
    _check(client.post(reverse("staff_cap_breach_review", args=[breach.pk]), **headers), review)
    breach.refresh_from_db()
    assert (breach.resolved_at is not None) == (who == "staff")


# --- Query counts ---------------------------------------------------------------------------


def _queries(client) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(reverse("staff_royalties")).status_code == 200
    return len(captured)


def test_queries_do_not_grow_with_buyers_invoices_breaches_or_batches(
    client, world, stripe_double, django_assert_max_num_queries
):
    give_mfa_session(client, world["staff"])
    before = _queries(client)
    for n in range(3):
        owner = make_user(email=f"owner{n}@buyer{n}.example")
        organization = make_organization(owner=owner, name=f"Buyer {n}")
        (license,) = buy(
            stripe_double, organization=organization, buyer=owner, listings=[world["listing"]]
        )
        _report(organization, license, f"o{n}")
        tally_usage()  # one more batch each time
    royalty_invoices_run(period=timezone.localdate())
    assert RoyaltyInvoice.objects.filter(status="open").count() == 4
    assert CapBreach.objects.filter(resolved_at__isnull=True).count() == 4
    with time_machine.travel(timezone.now() + timedelta(days=40)):  # all of them overdue
        give_mfa_session(client, world["staff"])
        after = _queries(client)
        with django_assert_max_num_queries(20):
            page = client.get(reverse("staff_royalties"))
    assert after == before
    assert page.context["overdue_count"] == 4 and len(page.context["breaches"]) == 4
