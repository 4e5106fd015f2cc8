"""Buyers' usage and royalty reports: the monthly figures per license and
metric, their reproducibility, the CSV, the pages and who may see them.

The scenario runs over three months with time travel: a license bought on
2 October 2026, usage reported (some of it late, some corrected) and tallied,
the October invoice sent and paid, the November one sent and left open."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Membership
from royalties import ledger, reports
from royalties.invoicing import royalty_invoice_paid, royalty_invoices_run
from royalties.models import LicenseUsageTotals, RoyaltyAccrual, RoyaltyInvoice
from royalties.tally import tally_usage
from royalties.usage import usage_events_ingest
from tests.factories import make_organization, make_performer, make_user
from tests.factories_licensing import bearer, buy, make_listing
from tests.factories_royalties import licensed_world
from tests.listings_support import give_mfa_session

pytestmark = pytest.mark.django_db

OCT, NOV, DEC = date(2026, 10, 1), date(2026, 11, 1), date(2026, 12, 1)
RATE = 5_000  # $50.00 per training run
RATES = {"training_run": {"amount_minor": RATE, "per": 1}}


def at(*when: int):
    return time_machine.travel(datetime(*when, tzinfo=UTC))


def usage(license, event_id: str, metric: str, when: datetime, **fields) -> dict:
    event = {
        "event_id": event_id,
        "license": license.uid,
        "metric": metric,
        "occurred_at": when.isoformat(),
        **fields,
    }
    if metric == "downstream_revenue":
        event["currency"] = "USD"
    return event


def report_usage(organization, events: list[dict]) -> None:
    results = usage_events_ingest(organization_id=organization.pk, events=events)
    assert all(r.status == "accepted" for r in results), [r.as_dict() for r in results]


def utc(*when: int) -> datetime:
    return datetime(*when, tzinfo=UTC)


def invoice_and_pay(stripe_double, period: date, *, pay: bool) -> RoyaltyInvoice:
    (invoice,) = royalty_invoices_run(period=period)
    invoice.refresh_from_db()
    if pay:
        stripe_double.pay_invoice(invoice.stripe_invoice_id)
        assert royalty_invoice_paid(provider_invoice_id=invoice.stripe_invoice_id) == "paid"
        invoice.refresh_from_db()
    return invoice


def three_months(stripe_double) -> dict:
    """October: 2 runs and $8,000 of revenue, tallied on the 20th, invoiced
    and paid on 1 November. November: a late October run, 3 runs (one later
    corrected away) and $7,000 of revenue — cumulative revenue passes the
    $10,000 threshold — invoiced on 1 December and left open."""
    with at(2026, 10, 2, 10):
        world = licensed_world(stripe_double, per_unit_rates=RATES)
    license, org = world["license"], world["organization"]
    with at(2026, 10, 20, 12):
        report_usage(
            org,
            [
                usage(license, "oct-run-1", "training_run", utc(2026, 10, 15), quantity=2),
                usage(
                    license,
                    "oct-rev-1",
                    "downstream_revenue",
                    utc(2026, 10, 18),
                    amount_minor=800_000,
                ),
            ],
        )
        tally_usage()
    with at(2026, 11, 1, 6):
        world["oct_invoice"] = invoice_and_pay(stripe_double, OCT, pay=True)
    with at(2026, 11, 3, 9):
        report_usage(
            org,
            [
                usage(license, "oct-run-2", "training_run", utc(2026, 10, 30), quantity=1),
                usage(license, "nov-run-1", "training_run", utc(2026, 11, 2), quantity=3),
                usage(
                    license,
                    "nov-rev-1",
                    "downstream_revenue",
                    utc(2026, 11, 2),
                    amount_minor=700_000,
                ),
            ],
        )
        tally_usage()
    with at(2026, 11, 10, 9):
        report_usage(
            org,
            [
                usage(
                    license,
                    "nov-run-1-fix",
                    "training_run",
                    utc(2026, 11, 9),
                    quantity=-1,
                    adjusts="nov-run-1",
                    note="one run was a dry run",
                )
            ],
        )
        tally_usage()
    with at(2026, 12, 1, 6):
        world["nov_invoice"] = invoice_and_pay(stripe_double, NOV, pay=False)
    member = make_user(email="member@ai.example", full_name="Mia Member")
    Membership.objects.create(organization=org, user=member, role=Membership.Role.MEMBER)
    world["member"] = member
    return world


@pytest.fixture
def world(stripe_double):
    return three_months(stripe_double)


# Expected royalties: October tally: 2 runs × $50 = $100; revenue $8,000 is
# under the threshold. November tallies: cumulative 6 runs → $300 (+$200),
# then corrected to 5 runs → $250 (−$50); revenue $15,000 → 20 % of $5,000
# = $1,000.
OCT_TRAINING = 2 * RATE
NOV_TRAINING = 4 * RATE - RATE
NOV_REVENUE_SHARE = 2000 * (1_500_000 - 1_000_000) // 10_000


def _row(report, metric: str) -> reports.MetricRow:
    (license,) = report.licenses
    return next(row for row in license.rows if row.metric == metric)


def test_november_figures_per_license_and_metric(world):
    report = reports.monthly_report(organization_id=world["organization"].pk, period=NOV)
    assert (report.starts_at, report.ends_at) == (utc(2026, 11, 1), utc(2026, 12, 1))
    (license,) = report.licenses
    assert license.uid == world["license"].uid
    assert [row.metric for row in license.rows] == ["training_run", "downstream_revenue"]

    training = _row(report, "training_run")
    # The late October run counts in October; the correction counts here.
    assert (training.events, training.quantity, training.adjustment_quantity) == (2, 2, -1)
    assert training.royalty_minor == NOV_TRAINING == 15_000
    assert training.untallied_events == 0

    revenue = _row(report, "downstream_revenue")
    assert (revenue.events, revenue.revenue_minor) == (1, 700_000)
    assert revenue.royalty_minor == NOV_REVENUE_SHARE == 100_000

    invoice = world["nov_invoice"]
    for row in (training, revenue):
        assert [(c.invoice_id, c.status) for c in row.coverage] == [(invoice.pk, "open")]
    assert report.invoices == (
        reports.InvoiceSummary(
            invoice_id=invoice.pk,
            period=NOV,
            status="open",
            currency="USD",
            amount_minor=115_000,
            from_this_month_minor=115_000,
        ),
    )
    assert report.totals == (reports.CurrencyTotal("USD", 700_000, 115_000, 0),)


def test_october_figures_and_its_paid_invoice(world):
    report = reports.monthly_report(organization_id=world["organization"].pk, period=OCT)
    training = _row(report, "training_run")
    assert (training.events, training.quantity) == (2, 2 + 1)  # the late report is October's
    assert training.royalty_minor == OCT_TRAINING
    assert [(c.invoice_id, c.status) for c in training.coverage] == [
        (world["oct_invoice"].pk, "paid")
    ]
    revenue = _row(report, "downstream_revenue")
    assert (revenue.revenue_minor, revenue.royalty_minor, revenue.coverage) == (800_000, 0, ())


def test_the_months_add_up_to_the_ledger(world):
    org = world["organization"]
    months = [reports.monthly_report(organization_id=org.pk, period=p) for p in (OCT, NOV, DEC)]
    accrued = sum(total.royalty_minor for m in months for total in m.totals)
    assert accrued == sum(a.amount_minor for a in RoyaltyAccrual.objects.all())
    assert accrued == LicenseUsageTotals.objects.get().royalty_owed_minor
    paid = world["oct_invoice"].amount_minor
    assert ledger.balance(ledger.buyer_receivable(org, "USD")) == accrued - paid
    assert reports.receivable_by_currency(org.pk) == {"USD": accrued - paid}


def test_a_report_is_reproducible_and_later_usage_for_other_months_changes_nothing(
    world, stripe_double
):
    org, license = world["organization"], world["license"]
    first = reports.monthly_report(organization_id=org.pk, period=NOV)
    assert reports.monthly_report(organization_id=org.pk, period=NOV) == first
    october = reports.monthly_report(organization_id=org.pk, period=OCT)

    with at(2026, 12, 5, 9):
        report_usage(
            org,
            [
                usage(license, "dec-run-1", "training_run", utc(2026, 12, 4), quantity=4),
                usage(
                    license,
                    "dec-rev-1",
                    "downstream_revenue",
                    utc(2026, 12, 4),
                    amount_minor=200_000,
                ),
                usage(license, "oct-run-3", "training_run", utc(2026, 10, 25), quantity=1),
            ],
        )
        assert tally_usage()  # royalties accrued in December
    assert RoyaltyAccrual.objects.filter(created_at__gte=utc(2026, 12, 1)).exists()

    assert reports.monthly_report(organization_id=org.pk, period=NOV) == first
    # The late October run changes October's usage (and only its usage):
    # its royalties accrued in December.
    october_now = reports.monthly_report(organization_id=org.pk, period=OCT)
    assert _row(october_now, "training_run").quantity == _row(october, "training_run").quantity + 1
    assert _row(october_now, "training_run").royalty_minor == OCT_TRAINING
    december = reports.monthly_report(organization_id=org.pk, period=DEC)
    assert _row(december, "training_run").royalty_minor == 5 * RATE  # 4 + 1 runs
    assert _row(december, "training_run").quantity == 4


def test_untallied_usage_counts_as_usage_and_not_yet_as_royalties(world):
    org, license = world["organization"], world["license"]
    with at(2026, 12, 2, 9):
        report_usage(
            org, [usage(license, "dec-run-x", "training_run", utc(2026, 12, 2), quantity=7)]
        )
    report = reports.monthly_report(organization_id=org.pk, period=DEC)
    row = _row(report, "training_run")
    assert (row.quantity, row.untallied_events, row.royalty_minor) == (7, 1, 0)
    assert report.untallied_events == 1


def test_a_license_without_usage_in_the_month_is_listed_with_no_rows(world, stripe_double):
    org = world["organization"]
    with at(2026, 11, 15, 9):
        listing = make_listing(world["performer"], world["staff"], title="Silent take")
        (quiet,) = buy(stripe_double, organization=org, buyer=world["owner"], listings=[listing])
    report = reports.monthly_report(organization_id=org.pk, period=NOV)
    assert [lic.uid for lic in report.licenses] == [world["license"].uid, quiet.uid]
    assert report.licenses[1].rows == ()
    october = reports.monthly_report(organization_id=org.pk, period=OCT)
    assert quiet.uid not in [lic.uid for lic in october.licenses]  # it started later


def test_the_report_page_shows_the_figures(client, world):
    org = world["organization"]
    client.force_login(world["member"])
    with at(2026, 12, 2, 9):
        page = client.get(reverse("buyer_usage_report", args=[org.slug, "2026-11"]))
    assert page.status_code == 200
    html = page.content.decode()
    assert world["license"].uid in html
    for text in ("$150.00", "$1,000.00", "$7,000.00", "$1,150.00", f"RI-{world['nov_invoice'].pk}"):
        assert text in html, text
    assert "incl. -1 in corrections" in html
    assert "one run was a dry run" not in html  # notes stay out of reports


def test_the_csv_parses_to_the_same_numbers(client, world):
    org = world["organization"]
    client.force_login(world["owner"])
    with at(2026, 12, 2, 9):
        response = client.get(reverse("buyer_usage_report_csv", args=[org.slug, "2026-11"]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "residuals-usage-" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    report = reports.monthly_report(organization_id=org.pk, period=NOV)
    (license,) = report.licenses
    assert [(r["license"], r["metric"]) for r in rows] == [
        (license.uid, "training_run"),
        (license.uid, "downstream_revenue"),
    ]
    for parsed, row in zip(rows, license.rows, strict=True):
        assert parsed["month"] == "2026-11"
        assert int(parsed["events"]) == row.events
        assert int(parsed["quantity"]) == row.quantity
        assert int(parsed["adjustment_quantity"]) == row.adjustment_quantity
        assert int(parsed["revenue_reported_minor"]) == row.revenue_minor
        assert int(parsed["royalty_accrued_minor"]) == row.royalty_minor
        assert parsed["invoices"] == f"RI-{world['nov_invoice'].pk}"
        assert parsed["invoice_statuses"] == "open"
        assert int(parsed["not_invoiced_minor"]) == 0
    assert rows[0]["royalty_accrued"] == "150.00" and rows[1]["royalty_accrued"] == "1000.00"
    assert rows[1]["revenue_reported"] == "7000.00"
    assert sum(int(r["royalty_accrued_minor"]) for r in rows) == 115_000


def test_the_overview_charts_usage_with_a_table_beside(client, world):
    org = world["organization"]
    client.force_login(world["member"])
    with at(2026, 12, 2, 9):
        page = client.get(reverse("buyer_usage", args=[org.slug]))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'role="img"' in html and "<svg" in html
    assert "Training run per month" in html
    # The chart's description and the table carry the same monthly figures.
    assert "Oct 2026: 3; Nov 2026: 2; Dec 2026: 0" in html
    assert "Oct 2026: $8,000.00; Nov 2026: $7,000.00" in html
    assert "October 2026" in html and "Show the last 6 months as a table" in html
    # Invoices with their status; what is owed comes from the ledger.
    assert f"RI-{world['nov_invoice'].pk}" in html and "$1,150.00" in html
    assert "Usage &amp; royalties" in html  # the organization's navigation


def test_royalty_invoice_list(client, world):
    org = world["organization"]
    with at(2027, 1, 5, 9):  # the November invoice was due on 31 December
        client.force_login(world["member"])
        page = client.get(reverse("buyer_royalty_invoices", args=[org.slug]))
    html = page.content.decode()
    assert page.status_code == 200
    assert "November 2026" in html and "October 2026" in html
    assert "Overdue" in html and "Paid" in html
    assert world["nov_invoice"].hosted_url in html  # pay it at Stripe
    assert "$1,150.00" in html and "$100.00" in html


@pytest.mark.parametrize("month", ["2026-13", "1999-01", "2027-02"])
def test_impossible_or_future_months_are_404(client, world, month):
    client.force_login(world["member"])
    with at(2026, 12, 2, 9):
        url = reverse("buyer_usage_report", args=[world["organization"].slug, month])
        assert client.get(url).status_code == 404


# --- Who may see these pages -----------------------------------------------------------------

ANON, PERFORMER, OTHER_PERFORMER, MEMBER, OWNER, OTHER_MEMBER, STAFF, STAFF_NO_MFA = (
    "anonymous",
    "performer of the license",
    "other performer",
    "member of the buyer",
    "owner of the buyer",
    "member of another organization",
    "staff",
    "staff without a second factor",
)
ORG_KEY, OTHER_ORG_KEY, PERFORMER_KEY = "org key", "other org key", "performer key"
WHO = (
    ANON,
    PERFORMER,
    OTHER_PERFORMER,
    MEMBER,
    OWNER,
    OTHER_MEMBER,
    STAFF,
    STAFF_NO_MFA,
    ORG_KEY,
    OTHER_ORG_KEY,
    PERFORMER_KEY,
)
# Members and staff (with a second factor) see the pages; anyone else signed
# in gets 404; API keys do not open web pages (the visitor is sent to sign in).
EXPECTED = {
    ANON: 302,
    PERFORMER: 404,
    OTHER_PERFORMER: 404,
    MEMBER: 200,
    OWNER: 200,
    OTHER_MEMBER: 404,
    STAFF: 200,
    STAFF_NO_MFA: 404,
    ORG_KEY: 302,
    OTHER_ORG_KEY: 302,
    PERFORMER_KEY: 302,
}


def sign_in(client, world, who) -> dict:
    """Sign ``who`` in (or make their key); returns headers to send."""
    other_owner = world.get("other_owner")
    if other_owner is None:
        other_owner = make_user(email="owner@rival.example", full_name="Rita Rival")
        world["other_owner"] = other_owner
        world["other_organization"] = make_organization(owner=other_owner, name="Rival Robotics")
    if who == ANON:
        return {}
    if who == ORG_KEY:
        return bearer(created_by=world["owner"], organization=world["organization"])[0]
    if who == OTHER_ORG_KEY:
        return bearer(created_by=other_owner, organization=world["other_organization"])[0]
    if who == PERFORMER_KEY:
        return bearer(created_by=world["performer"].user, performer=world["performer"])[0]
    if who == OTHER_PERFORMER:
        other = make_performer(email="other@performers.example", legal_name="Otto Other")
        client.force_login(other.user)
        return {}
    if who == STAFF:
        give_mfa_session(client, world["staff"])
        return {}
    user = {
        PERFORMER: world["performer"].user,
        MEMBER: world["member"],
        OWNER: world["owner"],
        OTHER_MEMBER: other_owner,
        STAFF_NO_MFA: world["staff"],
    }[who]
    client.force_login(user)
    return {}


@pytest.mark.parametrize("who", WHO)
def test_permission_matrix(client, world, who):
    headers = sign_in(client, world, who)
    slug = world["organization"].slug
    urls = [
        reverse("buyer_usage", args=[slug]),
        reverse("buyer_usage_report", args=[slug, "2026-11"]),
        reverse("buyer_usage_report_csv", args=[slug, "2026-11"]),
        reverse("buyer_royalty_invoices", args=[slug]),
    ]
    with at(2026, 12, 2, 9):
        for url in urls:
            response = client.get(url, **headers)
            assert response.status_code == EXPECTED[who], (url, who, response.status_code)
            if response.status_code == 302:
                assert "/accounts/login/" in response["Location"]
    # The same answer for an organization that does not exist: nothing leaks.
    if EXPECTED[who] == 404:
        assert (
            client.get(reverse("buyer_usage", args=["no-such-org"]), **headers).status_code == 404
        )


def test_staff_see_a_staff_view_without_the_members_navigation(client, world):
    give_mfa_session(client, world["staff"])
    with at(2026, 12, 2, 9):
        html = client.get(reverse("buyer_usage", args=[world["organization"].slug])).content
    assert b"Your role: Staff" in html and b"Staff royalties" in html
    assert reverse("organization_members", args=[world["organization"].slug]).encode() not in html


# --- Query counts ---------------------------------------------------------------------------


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
        assert response.status_code == 200, url
    return len(captured)


def _pages(slug: str) -> list[str]:
    return [
        reverse("buyer_usage", args=[slug]),
        reverse("buyer_usage_report", args=[slug, "2026-11"]),
        reverse("buyer_usage_report_csv", args=[slug, "2026-11"]),
        reverse("buyer_royalty_invoices", args=[slug]),
    ]


def test_queries_do_not_grow_with_licenses_events_or_invoices(
    client, world, stripe_double, django_assert_max_num_queries
):
    org = world["organization"]
    with at(2026, 12, 20, 9):
        client.force_login(world["member"])
        before = [_queries(client, url) for url in _pages(org.slug)]

    # Three more licenses with usage in November and December, tallied, and
    # two more monthly invoices.
    performer = make_performer(email="second@performers.example", legal_name="Sam Second")
    with at(2026, 10, 3, 9):
        extra = []
        for n in range(3):
            listing = make_listing(
                performer,
                world["staff"],
                title=f"Extra {n}",
                uses=("model_training", "commercial_deployment"),
                per_unit_rates=RATES,
            )
            extra += buy(stripe_double, organization=org, buyer=world["owner"], listings=[listing])
    for day in (4, 5):
        with at(2026, 11, day, 9):
            report_usage(
                org,
                [
                    usage(lic, f"x{lic.pk}-{day}-{m}", m, utc(2026, 11, day), **f)
                    for lic in extra
                    for m, f in (
                        ("training_run", {"quantity": 2}),
                        ("downstream_revenue", {"amount_minor": 900_000}),
                    )
                ],
            )
            tally_usage()
    with at(2026, 12, 10, 9):
        report_usage(
            org,
            [
                usage(lic, f"d{lic.pk}", "training_run", utc(2026, 12, 9), quantity=1)
                for lic in extra
            ],
        )
        tally_usage()
    with at(2026, 12, 15, 9):
        invoice_and_pay(stripe_double, DEC, pay=False)  # an extra invoice, mid-month
    assert RoyaltyInvoice.objects.filter(organization=org).count() == 3

    with at(2026, 12, 20, 9):
        after = [_queries(client, url) for url in _pages(org.slug)]
        assert after == before
        with django_assert_max_num_queries(16):
            client.get(_pages(org.slug)[0])


def test_csv_cells_from_titles_never_run_as_formulas(client, world, stripe_double):
    org = world["organization"]
    with at(2026, 11, 15, 9):
        listing = make_listing(world["performer"], world["staff"], title="=HYPERLINK(1)")
        buy(stripe_double, organization=org, buyer=world["owner"], listings=[listing])
    with at(2026, 12, 2, 9):
        client.force_login(world["owner"])
        response = client.get(reverse("buyer_usage_report_csv", args=[org.slug, "2026-11"]))
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert rows[-1]["listing"] == "'=HYPERLINK(1)" and rows[-1]["metric"] == ""
    assert rows[0]["listing"] == "Grief, held back"
