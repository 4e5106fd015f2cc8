"""The performer's /earnings/ pages: balances, earnings over time, usage per
license (never the buyer's notes or model names), thresholds and cap
breaches, the dashboard tile, who may see what, and query counts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership
from royalties.selectors_performer import chart_months, earnings_overview
from royalties.tally import tally_usage
from royalties.usage import usage_events_ingest
from tests.factories import make_organization, make_performer, make_user
from tests.factories_marketplace import make_published_listing, make_sellable_recording
from tests.factories_royalties import buy, licensed_world
from tests.listings_support import give_mfa_session

pytestmark = pytest.mark.django_db

NOTE = "Churn model for the ACME-7 pilot, do not share"
MODEL = "acme-secret-voice-v7"


def at(month: int, day: int, hour: int = 12):
    return time_machine.travel(datetime(2026, month, day, hour, tzinfo=UTC), tick=True)


def report(organization, license, events):
    now = timezone.now().isoformat()
    results = usage_events_ingest(
        organization_id=organization.pk,
        events=[{"license": license.uid, "occurred_at": now, **event} for event in events],
    )
    assert all(r.status == "accepted" for r in results), [r.as_dict() for r in results]


@pytest.fixture
def world(stripe_double):
    """A $500 license with a $10,000 threshold, a cap of two models trained
    and $10 per training run. By 20 October the buyer reported $8,000 of
    revenue (80 % of the threshold) and three training runs (one over the
    cap), each event with a note and a model name, and one more run that
    the tally has not counted yet."""
    with at(10, 5):
        world = licensed_world(
            stripe_double,
            reuse_caps={"max_models_trained": 2},
            per_unit_rates={"training_run": {"amount_minor": 1_000, "per": 1}},
        )
    with at(10, 20):
        report(
            world["organization"],
            world["license"],
            [
                {
                    "event_id": "rev-1",
                    "metric": "downstream_revenue",
                    "amount_minor": 800_000,
                    "currency": "USD",
                    "note": NOTE,
                    "model": MODEL,
                },
                *[
                    {
                        "event_id": f"run-{i}",
                        "metric": "training_run",
                        "quantity": 1,
                        "note": NOTE,
                        "model": MODEL,
                    }
                    for i in range(3)
                ],
            ],
        )
        tally_usage()
        report(
            world["organization"],
            world["license"],
            [{"event_id": "run-late", "metric": "training_run", "quantity": 1, "note": NOTE}],
        )
    return world


def _get(client, url, user=None, *, mfa=False, when=(10, 22)):
    with at(*when):
        if user is not None:
            if mfa:
                give_mfa_session(client, user)
            else:
                client.force_login(user)
        return client.get(url)


# --- What the overview shows ----------------------------------------------------------------


def test_overview_shows_balances_usage_threshold_and_breach(client, world):
    response = _get(client, reverse("performer_earnings"), world["performer"].user)
    assert response.status_code == 200
    body = response.content.decode()
    overview = response.context["overview"]
    (balance,) = overview.balances
    # Sale: $500 less 20 % = $400 available. Royalties: 3 runs × $10 = $30,
    # less 20 % = $24 pending. The late run waits for the tally.
    assert (balance.available_minor, balance.pending_minor) == (40_000, 2_400)
    assert "$400.00" in body and "$24.00" in body
    (row,) = overview.licenses
    assert row.metrics == [("Training run", 3)]
    assert row.revenue_minor == 800_000
    assert row.untallied_events == 1
    assert row.earned_net_minor == 40_000 + 2_400
    assert row.near_threshold and row.threshold_progress_pct == 80
    assert overview.near_threshold == [row]
    assert "Close to the revenue share" in body
    assert 'aria-valuenow="80"' in body
    assert "$2,000.00 to go" in body
    (breach,) = overview.breaches
    assert (breach.cap, breach.limit, breach.reported) == ("Models trained", 2, 3)
    assert "Reuse caps exceeded" in body and "1 open" in body
    assert "1 new event waiting for the next tally" in body
    assert world["license"].uid in body and "Deep Feelings AI" in body


def test_the_chart_is_inline_svg_with_a_table(client, world):
    response = _get(client, reverse("performer_earnings"), world["performer"].user)
    body = response.content.decode()
    (chart,) = response.context["overview"].charts
    assert [bar.period for bar in chart.bars] == chart_months(datetime(2026, 10, 22).date())
    october = chart.bars[-1]
    assert (october.sales_minor, october.royalties_minor) == (40_000, 2_400)
    assert october.sales_height > october.royalties_height > 0
    assert all(bar.net_minor == 0 for bar in chart.bars[:-1])
    assert '<svg class="earn-chart__svg"' in body
    assert 'role="img"' in body and "<title id=" in body and "<desc id=" in body
    assert "Figures by month" in body and "October 2026" in body
    assert "<script" not in body.split('<main id="main"')[1]


def test_usage_never_shows_the_buyers_notes_or_models(client, world):
    for url in (
        reverse("performer_earnings"),
        reverse("performer_statements"),
        reverse("performer_statement", args=["2026-10"]),
        reverse("performer_statement_csv", args=["2026-10"]),
    ):
        response = _get(client, url, world["performer"].user)
        assert response.status_code == 200
        text = response.content.decode()
        assert NOTE not in text and MODEL not in text, url


def test_a_license_past_the_threshold_is_not_close_any_more(client, world):
    with at(10, 21):
        report(
            world["organization"],
            world["license"],
            [
                {
                    "event_id": "rev-2",
                    "metric": "downstream_revenue",
                    "amount_minor": 300_000,
                    "currency": "USD",
                }
            ],
        )
        tally_usage()
    response = _get(client, reverse("performer_earnings"), world["performer"].user)
    (row,) = response.context["overview"].licenses
    assert row.threshold_crossed and not row.near_threshold
    assert response.context["overview"].near_threshold == []
    assert "Share of 20% active" in response.content.decode()


def test_an_empty_overview_reads_well(client):
    performer = make_performer(email="new@performers.example", stage_name="New Voice")
    response = _get(client, reverse("performer_earnings"), performer.user)
    assert response.status_code == 200
    body = response.content.decode()
    assert "No licenses yet" in body
    assert "Nothing was earned in these twelve months" in body
    assert "No buyer has reported usage beyond a reuse cap" in body
    statements = _get(client, reverse("performer_statements"), performer.user)
    assert "No statements yet" in statements.content.decode()


def test_the_dashboard_tile_shows_balances_and_links_to_earnings(client, world):
    response = _get(client, reverse("performer_dashboard"), world["performer"].user)
    body = response.content.decode()
    assert 'id="earnings-title"' in body
    assert reverse("performer_earnings") in body
    (balance,) = response.context["earnings_balances"]
    assert (balance.available_minor, balance.pending_minor) == (40_000, 2_400)
    assert "$400.00" in body and "$24.00" in body


# --- Query counts -----------------------------------------------------------------------------


def _another_license(stripe_double, world, index):
    """One more license on the performer's recordings, with usage over its
    cap, so every section of the page grows."""
    with at(10, 6):
        recording = make_sellable_recording(
            world["performer"],
            title=f"Extra take {index}",
            uses=("model_training", "commercial_deployment"),
        )
        listing = make_published_listing(
            world["performer"],
            [recording],
            reviewer=world["staff"],
            title=f"Pack {index}",
            uses=("model_training", "commercial_deployment"),
            reuse_caps={"max_models_trained": 1},
            per_unit_rates={"training_run": {"amount_minor": 500, "per": 1}},
        )
        owner = make_user(email=f"owner{index}@more.example")
        organization = make_organization(owner=owner, name=f"More AI {index}")
        (license,) = buy(stripe_double, organization=organization, buyer=owner, listings=[listing])
    with at(10, 21):
        report(
            organization,
            license,
            [
                {
                    "event_id": "rev",
                    "metric": "downstream_revenue",
                    "amount_minor": 900_000,
                    "currency": "USD",
                },
                *[
                    {"event_id": f"run-{i}", "metric": "training_run", "quantity": 1}
                    for i in range(2)
                ],
            ],
        )
        tally_usage()
        report(organization, license, [{"event_id": "late", "metric": "deployment", "quantity": 1}])


def test_overview_queries_do_not_grow_with_licenses(
    client, stripe_double, world, django_assert_num_queries
):
    url = reverse("performer_earnings")
    with at(10, 22):
        client.force_login(world["performer"].user)
        with CaptureQueriesContext(connection) as one:
            assert client.get(url).status_code == 200
    for index in range(4):
        _another_license(stripe_double, world, index)
    with at(10, 22):
        client.force_login(world["performer"].user)
        with django_assert_num_queries(len(one)):
            response = client.get(url)
    overview = response.context["overview"]
    assert len(overview.licenses) == 5
    assert len(overview.breaches) == 5
    assert len(overview.near_threshold) == 5


def test_statement_list_queries_do_not_grow(
    client, stripe_double, world, django_assert_num_queries
):
    url = reverse("performer_statements")
    with at(10, 22):
        client.force_login(world["performer"].user)
        with CaptureQueriesContext(connection) as one:
            assert client.get(url).status_code == 200
    for index in range(3):
        _another_license(stripe_double, world, index)
    with at(10, 22):
        client.force_login(world["performer"].user)
        with django_assert_num_queries(len(one)):
            assert client.get(url).status_code == 200


def test_the_selector_is_a_fixed_number_of_queries(world, django_assert_num_queries):
    with django_assert_num_queries(6):
        overview = earnings_overview(world["performer"], today=datetime(2026, 10, 22).date())
        assert overview.breaches and overview.near_threshold


# --- Who may see what -------------------------------------------------------------------------

ANON, OWNER, OTHER, BUYER, MEMBER, STAFF, STAFF_MFA = (
    "anonymous",
    "the performer",
    "another performer",
    "buyer organization owner",
    "buyer organization member",
    "staff without MFA",
    "staff with MFA",
)


@pytest.fixture
def people(world):
    with at(10, 6):
        other = make_performer(email="other@performers.example", stage_name="Otto Other")
        member = make_user(email="member@ai.example")
        Membership.objects.create(
            organization=world["organization"], user=member, role=Membership.Role.MEMBER
        )
    return {
        OWNER: world["performer"].user,
        OTHER: other.user,
        BUYER: world["owner"],
        MEMBER: member,
        STAFF: world["staff"],
        STAFF_MFA: world["staff"],
    }


ENDPOINTS = [
    ("performer_earnings", []),
    ("performer_statements", []),
    ("performer_statement", ["2026-10"]),
    ("performer_statement_csv", ["2026-10"]),
    ("performer_statement_pdf", ["2026-10"]),
]

# Their own pages (no ?performer=): only people with a performer profile.
OWN = {ANON: 302, OWNER: 200, OTHER: 200, BUYER: 404, MEMBER: 404, STAFF: 404, STAFF_MFA: 404}
# Someone's pages by id: the performer themselves, or staff after a second factor.
BY_ID = {ANON: 302, OWNER: 200, OTHER: 404, BUYER: 404, MEMBER: 404, STAFF: 302, STAFF_MFA: 200}


def _request(client, people, role, url):
    user = people.get(role)
    return _get(client, url, user, mfa=role == STAFF_MFA)


@pytest.mark.parametrize("name,args", ENDPOINTS)
@pytest.mark.parametrize("role", list(OWN))
def test_own_pages_by_role(client, world, people, role, name, args):
    response = _request(client, people, role, reverse(name, args=args))
    assert response.status_code == OWN[role], (role, name)
    if role == ANON:
        assert response["Location"].startswith(reverse("account_login"))
    if role == OTHER and name == "performer_statement":
        # The other performer sees their own (empty) month, never the owner's.
        statement = response.context["statement"]
        assert statement.performer_id != world["performer"].pk
        assert statement.closing_minor == 0
        assert "$400.00" not in response.content.decode()


@pytest.mark.parametrize("name,args", ENDPOINTS)
@pytest.mark.parametrize("role", list(BY_ID))
def test_pages_by_performer_id_by_role(client, world, people, role, name, args):
    url = reverse(name, args=args) + f"?performer={world['performer'].pk}"
    response = _request(client, people, role, url)
    assert response.status_code == BY_ID[role], (role, name)
    if role == STAFF:
        assert response["Location"].startswith(reverse("mfa_activate_totp"))
    if role == STAFF_MFA and name == "performer_statement":
        assert response.context["statement"].performer_id == world["performer"].pk
        assert response.context["statement"].closing_minor == 40_000 + 2_400
        body = response.content.decode()
        assert "Staff view" in body
        # Links keep pointing at the same performer.
        assert f"?performer={world['performer'].pk}" in body


def test_staff_links_keep_the_performer(client, world, people):
    response = _request(
        client,
        people,
        STAFF_MFA,
        reverse("performer_statements") + f"?performer={world['performer'].pk}",
    )
    (_month, links) = response.context["rows"][0]
    assert links["csv_url"].endswith(f"?performer={world['performer'].pk}")
    csv_response = _request(client, people, STAFF_MFA, links["csv_url"])
    assert csv_response.status_code == 200
    assert csv_response.content.decode().splitlines()[-1].startswith("closing,")


def test_a_bad_performer_id_is_not_found(client, world, people):
    for value in ("abc", "999999"):
        response = _request(
            client, people, STAFF_MFA, reverse("performer_earnings") + f"?performer={value}"
        )
        assert response.status_code == 404
