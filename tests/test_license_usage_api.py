"""GET /api/v1/licenses/{id}/usage/: aggregated usage for the buyer, the
performers the license pays, and staff — and 404 for everyone else."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Membership
from royalties.models import LicenseUsageTotals, RoyaltyAccrual
from royalties.tally import tally_usage
from tests.factories import make_organization, make_performer, make_user
from tests.factories_licensing import bearer
from tests.factories_royalties import licensed_world
from tests.listings_support import give_mfa_session

pytestmark = pytest.mark.django_db

RATES = {"training_run": {"amount_minor": 1_250, "per": 1}}
SECRET_NOTE = "run on the confidential customer-support corpus"
SECRET_MODEL = "acme-empathy-v7-internal"


def _event(license, event_id, metric, **fields):
    event = {
        "event_id": event_id,
        "license": license.uid,
        "metric": metric,
        "occurred_at": timezone.now().isoformat(),
        **fields,
    }
    if metric == "downstream_revenue":
        event["currency"] = "USD"
    return event


def _post_usage(client, headers, events):
    response = client.post(
        "/api/v1/usage-events/", json.dumps(events), content_type="application/json", **headers
    )
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == len(events)


@pytest.fixture
def world(stripe_double, client):
    world = licensed_world(stripe_double, co_performer_bps=3_000, per_unit_rates=RATES)
    license = world["license"]
    member = make_user(email="member@ai.example")
    Membership.objects.create(
        organization=world["organization"], user=member, role=Membership.Role.MEMBER
    )
    world["member"] = member
    world["other_owner"] = make_user(email="owner@rival.example")
    world["other_organization"] = make_organization(owner=world["other_owner"], name="Rival AI")
    world["other_performer"] = make_performer(
        email="other@performers.example", legal_name="Otto Other"
    )
    org_key, _ = bearer(created_by=world["owner"], organization=world["organization"])
    _post_usage(
        client,
        org_key,
        [
            _event(license, "run-1", "training_run", quantity=3, model=SECRET_MODEL),
            _event(license, "run-2", "training_run", quantity=2, note=SECRET_NOTE),
            _event(license, "rev-1", "downstream_revenue", amount_minor=1_600_000),
        ],
    )
    _post_usage(
        client,
        org_key,
        [_event(license, "run-2-fix", "training_run", quantity=-1, adjusts="run-2")],
    )
    tally_usage()
    _post_usage(client, org_key, [_event(license, "run-3", "training_run", quantity=10)])
    return world


# 4 + 10 training runs reported, 4 of them tallied at $12.50; $16,000 of
# revenue, 20 % of the $6,000 above the threshold.
TRAINING_ROYALTY = 4 * 1_250
REVENUE_ROYALTY = 2000 * 600_000 // 10_000


def test_the_buyer_sees_totals_per_metric(client, world):
    headers, _ = bearer(created_by=world["owner"], organization=world["organization"])
    license = world["license"]
    response = client.get(f"/api/v1/licenses/{license.uid}/usage/", **headers)
    assert response.status_code == 200
    assert response.json() == {
        "license": license.uid,
        "currency": "USD",
        "month": None,
        "events": 5,
        "untallied_events": 1,
        "revenue_reported_minor": 1_600_000,
        "royalties_accrued_minor": TRAINING_ROYALTY + REVENUE_ROYALTY,
        "metrics": [
            {
                "metric": "training_run",
                "events": 4,
                "quantity": 14,
                "amount_minor": None,
                "royalty_minor": TRAINING_ROYALTY,
            },
            {
                "metric": "downstream_revenue",
                "events": 1,
                "quantity": 0,
                "amount_minor": 1_600_000,
                "royalty_minor": REVENUE_ROYALTY,
            },
        ],
    }
    totals = LicenseUsageTotals.objects.get(license=license)  # what the tally counted
    assert totals.royalty_owed_minor == response.json()["royalties_accrued_minor"]
    assert sum(a.amount_minor for a in RoyaltyAccrual.objects.filter(license=license)) == (
        totals.royalty_owed_minor
    )
    by_pk = client.get(f"/api/v1/licenses/{license.pk}/usage/", **headers)
    assert by_pk.json() == response.json()


def test_performers_see_the_same_aggregates_and_nothing_else(client, world):
    license = world["license"]
    url = f"/api/v1/licenses/{license.uid}/usage/"
    buyer = client.get(
        url, **bearer(created_by=world["owner"], organization=world["organization"])[0]
    ).json()
    for performer in (world["performer"], world["co_performer"]):
        response = client.get(url, **bearer(created_by=performer.user, performer=performer)[0])
        assert response.status_code == 200
        assert response.json() == buyer
        body = response.content.decode()
        for secret in (SECRET_NOTE, SECRET_MODEL, "run-1", "run-2", "rev-1", "event_id"):
            assert secret not in body
        assert set(response.json()) == {
            "license",
            "currency",
            "month",
            "events",
            "untallied_events",
            "revenue_reported_minor",
            "royalties_accrued_minor",
            "metrics",
        }


def test_one_month_and_a_bad_month(client, world):
    headers, _ = bearer(created_by=world["owner"], organization=world["organization"])
    license = world["license"]
    month = timezone.now().strftime("%Y-%m")
    body = client.get(f"/api/v1/licenses/{license.uid}/usage/?month={month}", **headers).json()
    assert (body["month"], body["events"], body["revenue_reported_minor"]) == (month, 5, 1_600_000)
    last_year = (timezone.now() - timedelta(days=365)).strftime("%Y-%m")
    empty = client.get(f"/api/v1/licenses/{license.uid}/usage/?month={last_year}", **headers)
    assert empty.json()["metrics"] == [] and empty.json()["events"] == 0
    bad = client.get(f"/api/v1/licenses/{license.uid}/usage/?month=November", **headers)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_filter"


# --- Who may call it --------------------------------------------------------------------------

CALLERS = {
    # caller: expected status
    "anonymous": 401,
    "buyer org key": 200,
    "other org key": 404,
    "performer key": 200,
    "co-performer key": 200,
    "other performer key": 404,
    "buyer member session": 200,
    "buyer owner session": 200,
    "other org member session": 404,
    "performer session": 200,
    "co-performer session": 200,
    "other performer session": 404,
    "staff session": 200,
    "staff session without a second factor": 404,
}


def _as(client, world, who: str) -> dict:
    keys = {
        "buyer org key": lambda: bearer(
            created_by=world["owner"], organization=world["organization"]
        ),
        "other org key": lambda: bearer(
            created_by=world["other_owner"], organization=world["other_organization"]
        ),
        "performer key": lambda: bearer(
            created_by=world["performer"].user, performer=world["performer"]
        ),
        "co-performer key": lambda: bearer(
            created_by=world["co_performer"].user, performer=world["co_performer"]
        ),
        "other performer key": lambda: bearer(
            created_by=world["other_performer"].user, performer=world["other_performer"]
        ),
    }
    if who in keys:
        return keys[who]()[0]
    sessions = {
        "buyer member session": world["member"],
        "buyer owner session": world["owner"],
        "other org member session": world["other_owner"],
        "performer session": world["performer"].user,
        "co-performer session": world["co_performer"].user,
        "other performer session": world["other_performer"].user,
        "staff session without a second factor": world["staff"],
    }
    if who == "staff session":
        give_mfa_session(client, world["staff"])
    elif who in sessions:
        client.force_login(sessions[who])
    return {}


@pytest.mark.parametrize("who", list(CALLERS))
def test_permission_matrix(client, world, who):
    headers = _as(client, world, who)
    license = world["license"]
    expected = CALLERS[who]
    for ref in (license.uid, license.pk):
        response = client.get(f"/api/v1/licenses/{ref}/usage/", **headers)
        assert response.status_code == expected, (who, ref, response.content[:200])
        if expected == 200:
            assert response.json()["license"] == license.uid
        else:
            assert set(response.json()["error"]) == {"code", "message", "details"}
    # A license that does not exist answers exactly as one the caller may not see.
    missing = client.get("/api/v1/licenses/LIC-0000000000/usage/", **headers)
    missing_pk = client.get("/api/v1/licenses/999999/usage/", **headers)
    not_a_ref = client.get("/api/v1/licenses/nonsense/usage/", **headers)
    wanted = 401 if who == "anonymous" else 404
    assert missing.status_code == missing_pk.status_code == not_a_ref.status_code == wanted
    if expected == 404:
        hidden = client.get(f"/api/v1/licenses/{license.uid}/usage/", **headers)
        assert hidden.json() == missing.json()


def test_only_get_is_allowed(client, world):
    headers, _ = bearer(created_by=world["owner"], organization=world["organization"])
    url = f"/api/v1/licenses/{world['license'].uid}/usage/"
    assert client.post(url, {}, content_type="application/json", **headers).status_code == 405


def test_the_endpoint_is_documented(client):
    schema = client.get("/api/schema/?format=json").json()
    assert "/api/v1/licenses/{license_id}/usage/" in schema["paths"]


def test_queries_do_not_grow_with_events_or_metrics(client, world):
    license = world["license"]
    headers, _ = bearer(created_by=world["performer"].user, performer=world["performer"])
    url = f"/api/v1/licenses/{license.uid}/usage/"
    client.get(url, **headers)  # warm up (the key records when it was last used)

    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url, **headers).status_code == 200
        return len(captured)

    before = count()
    org_key, _ = bearer(created_by=world["owner"], organization=world["organization"])
    _post_usage(
        client,
        org_key,
        [_event(license, f"more-{n}", "training_run", quantity=1) for n in range(40)]
        + [_event(license, f"eval-{n}", "evaluation_run", quantity=2) for n in range(5)],
    )
    tally_usage()
    assert count() == before
