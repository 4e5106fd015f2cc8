"""Usage reporting: each event judged on its own, stored once, never edited."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.db import DatabaseError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.services import api_key_create
from royalties.models import UsageEvent
from royalties.tally import tally_usage
from tests.factories_royalties import licensed_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(stripe_double):
    world = licensed_world(stripe_double, price_minor=100_000)
    world["key"] = api_key_create(
        name="pipeline", created_by=world["owner"], organization=world["organization"]
    ).secret
    return world


def _post(client, world, events):
    return client.post(
        "/api/v1/usage-events/",
        events,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {world['key']}",
    )


def _event(world, event_id="e1", **overrides):
    body = {
        "event_id": event_id,
        "license": world["license"].uid,
        "metric": "training_run",
        "quantity": 1,
        "occurred_at": timezone.now().isoformat(),
        "model": "empathy-7b",
    }
    body.update(overrides)
    return body


def test_a_good_event_is_accepted_and_stored(client, world):
    response = _post(client, world, _event(world))
    assert response.status_code == 200
    assert response.json()["results"] == [{"index": 0, "event_id": "e1", "status": "accepted"}]
    event = UsageEvent.objects.get()
    assert (event.metric, event.quantity, event.model) == ("training_run", 1, "empathy-7b")
    assert event.api_key_prefix


def test_resending_is_harmless_and_a_changed_body_conflicts(client, world):
    event = _event(world)
    _post(client, world, [event])
    again = _post(client, world, [event, {**event, "quantity": 2}])
    results = again.json()["results"]
    assert results[0]["status"] == "duplicate"
    assert results[1]["status"] == "rejected"
    assert results[1]["error"]["code"] == "conflicting_duplicate"
    assert UsageEvent.objects.count() == 1


def test_a_bad_event_never_blocks_the_good_ones(client, world):
    now = timezone.now()
    events = [
        _event(world, "ok-1"),
        _event(world, "no-license", license="LIC-NOPE000000"),
        _event(
            world,
            "before",
            occurred_at=(world["license"].starts_at - timedelta(days=1)).isoformat(),
        ),
        _event(world, "not-permitted", metric="fine_tune_run"),
        _event(
            world,
            "rev-eur",
            metric="downstream_revenue",
            quantity=0,
            amount_minor=5,
            currency="EUR",
        ),
        _event(world, "rev-no-amount", metric="downstream_revenue"),
        _event(world, "amount-on-runs", amount_minor=5, currency="USD"),
        _event(world, "future", occurred_at=(now + timedelta(minutes=6)).isoformat()),
        _event(world, "naive-time", occurred_at=now.replace(tzinfo=None).isoformat()),
        _event(world, "negative", quantity=-1),
        _event(world, "x" * 101),
        _event(world, "unknown-field", colour="red"),
        "not an object",
        _event(
            world,
            "ok-2",
            metric="downstream_revenue",
            quantity=0,
            amount_minor=250_000,
            currency="usd",
        ),
    ]
    response = _post(client, world, events)
    assert response.status_code == 207
    codes = [r.get("error", {}).get("code", r["status"]) for r in response.json()["results"]]
    assert codes == [
        "accepted",
        "license_not_found",
        "license_not_active_at_time",
        "metric_not_permitted",
        "currency_mismatch",
        "amount_required",
        "amount_not_allowed",
        "occurred_in_future",
        "invalid_event",
        "invalid_event",
        "invalid_event",
        "invalid_event",
        "invalid_event",
        "accepted",
    ]
    assert set(UsageEvent.objects.values_list("event_id", flat=True)) == {"ok-1", "ok-2"}


def test_late_events_are_accepted_for_35_days_after_the_end(client, world):
    license = world["license"]
    inside = (license.ends_at - timedelta(hours=1)).isoformat()
    with time_machine.travel(license.ends_at + timedelta(days=34)):
        assert _post(client, world, _event(world, "late", occurred_at=inside)).status_code == 200
    with time_machine.travel(license.ends_at + timedelta(days=36)):
        response = _post(client, world, _event(world, "too-late", occurred_at=inside))
    assert response.json()["results"][0]["error"]["code"] == "reporting_window_closed"


def test_adjustments_correct_without_editing(client, world):
    _post(client, world, _event(world, "run-1", quantity=3))
    response = _post(
        client, world, _event(world, "fix-1", quantity=-1, adjusts="run-1", note="double-counted")
    )
    assert response.json()["results"][0]["status"] == "accepted"
    fix = UsageEvent.objects.get(event_id="fix-1")
    assert fix.adjusts.event_id == "run-1"
    bad = _post(client, world, _event(world, "fix-2", adjusts="missing"))
    assert bad.json()["results"][0]["error"]["code"] == "adjustment_target_not_found"
    wrong_metric = _post(
        client,
        world,
        _event(
            world,
            "fix-3",
            metric="downstream_revenue",
            amount_minor=-1,
            currency="USD",
            adjusts="run-1",
        ),
    )
    assert wrong_metric.json()["results"][0]["error"]["code"] == "adjustment_mismatch"


def test_stored_events_cannot_be_edited_or_deleted(client, world):
    _post(client, world, _event(world))
    with pytest.raises(DatabaseError), transaction.atomic():
        UsageEvent.objects.update(quantity=99)
    with pytest.raises(DatabaseError), transaction.atomic():
        UsageEvent.objects.all().delete()
    # Not even an UPDATE that changes nothing: the tally never writes events.
    with pytest.raises(DatabaseError), transaction.atomic():
        UsageEvent.objects.update(note=F("note"))


def test_request_limits_and_shape(client, world):
    assert _post(client, world, []).status_code == 400
    too_many = [_event(world, f"e{i}") for i in range(1001)]
    response = _post(client, world, too_many)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "too_many_events"
    malformed = client.post(
        "/api/v1/usage-events/",
        "{not json",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {world['key']}",
    )
    assert malformed.status_code == 400
    assert malformed.json()["error"]["code"] == "malformed_request"
    assert not UsageEvent.objects.exists()


def test_another_organizations_license_is_not_found(client, world, stripe_double):
    from tests.factories import make_organization, make_user

    other_owner = make_user(email="other@ai.example")
    other = make_organization(owner=other_owner, name="Other AI")
    key = api_key_create(name="k", created_by=other_owner, organization=other).secret
    response = client.post(
        "/api/v1/usage-events/",
        _event(world),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )
    assert response.json()["results"][0]["error"]["code"] == "license_not_found"


def test_listing_events_with_filters(client, world):
    _post(
        client,
        world,
        [
            _event(world, "a"),
            _event(world, "b", metric="downstream_revenue", amount_minor=10, currency="USD"),
        ],
    )
    response = client.get(
        "/api/v1/usage-events/?metric=downstream_revenue",
        HTTP_AUTHORIZATION=f"Bearer {world['key']}",
    )
    assert [e["event_id"] for e in response.json()["results"]] == ["b"]
    assert client.get("/api/v1/usage-events/").status_code == 401


def test_listing_says_which_events_are_tallied(client, world, django_assert_max_num_queries):
    _post(client, world, [_event(world, "a"), _event(world, "b")])
    tally_usage()
    _post(client, world, [_event(world, "c")])

    def listed(query=""):
        response = client.get(
            f"/api/v1/usage-events/{query}", HTTP_AUTHORIZATION=f"Bearer {world['key']}"
        )
        return {e["event_id"]: e["tallied"] for e in response.json()["results"]}

    with django_assert_max_num_queries(8):
        assert listed() == {"a": True, "b": True, "c": False}
    assert listed("?tallied=true") == {"a": True, "b": True}
    assert listed("?tallied=false") == {"c": False}
    detail = client.get("/api/v1/usage-events/c/", HTTP_AUTHORIZATION=f"Bearer {world['key']}")
    assert detail.json()["tallied"] is False
    tally_usage()
    assert listed("?tallied=false") == {}


def test_a_correction_cannot_take_an_event_below_zero(client, world):
    _post(
        client,
        world,
        [
            _event(world, "run-1", quantity=3),
            _event(world, "rev-1", metric="downstream_revenue", amount_minor=500, currency="USD"),
        ],
    )
    # Two corrections in one request are judged in order: -2 fits, a further -2 does not.
    response = _post(
        client,
        world,
        [
            _event(world, "fix-1", quantity=-2, adjusts="run-1"),
            _event(world, "fix-2", quantity=-2, adjusts="run-1"),
            _event(
                world,
                "fix-3",
                metric="downstream_revenue",
                amount_minor=-501,
                currency="USD",
                adjusts="rev-1",
            ),
        ],
    )
    results = response.json()["results"]
    assert response.status_code == 207
    assert results[0]["status"] == "accepted"
    assert [r["error"]["code"] for r in results[1:]] == ["adjustment_exceeds_original"] * 2
    assert results[2]["error"]["field"] == "amount_minor"
    # Later requests see the corrections already stored: one unit is left.
    assert (
        _post(client, world, _event(world, "fix-4", quantity=-2, adjusts="run-1")).json()[
            "results"
        ][0]["error"]["code"]
        == "adjustment_exceeds_original"
    )
    assert (
        _post(client, world, _event(world, "fix-5", quantity=-1, adjusts="run-1")).json()[
            "results"
        ][0]["status"]
        == "accepted"
    )
    # A correction names an original report, not another correction.
    chained = _post(client, world, _event(world, "fix-6", quantity=1, adjusts="fix-1"))
    assert chained.json()["results"][0]["error"]["code"] == "adjustment_mismatch"
    stored = set(UsageEvent.objects.values_list("event_id", flat=True))
    assert stored == {"run-1", "rev-1", "fix-1", "fix-5"}


def test_the_edges_of_a_request(client, world):
    """Exactly 1,000 events are taken; 4 min 59 s ahead is not the future; the
    same event twice in one request is stored once."""
    batch = [_event(world, f"e{i}") for i in range(1000)]
    response = _post(client, world, batch)
    assert response.status_code == 200
    assert response.json()["accepted"] == 1000
    soon = (timezone.now() + timedelta(minutes=4, seconds=59)).isoformat()
    twice = _event(world, "soon", occurred_at=soon)
    response = _post(client, world, [twice, twice])
    assert [r["status"] for r in response.json()["results"]] == ["accepted", "duplicate"]
    assert UsageEvent.objects.count() == 1001


def test_listing_filters_by_license_time_and_kind(client, world):
    license = world["license"]
    start = timezone.now()
    _post(client, world, _event(world, "old", quantity=2))
    with time_machine.travel(start + timedelta(hours=2)):
        _post(client, world, _event(world, "new"))
        _post(
            client,
            world,
            _event(world, "fix", quantity=-1, adjusts="old", occurred_at=start.isoformat()),
        )

    def listed(query):
        response = client.get(
            f"/api/v1/usage-events/?{query}", HTTP_AUTHORIZATION=f"Bearer {world['key']}"
        )
        assert response.status_code == 200, response.json()
        return sorted(e["event_id"] for e in response.json()["results"])

    assert listed(f"license={license.uid}") == ["fix", "new", "old"]
    assert listed(f"license={license.pk}") == ["fix", "new", "old"]
    assert listed("license=LIC-NOPE") == []
    hour_ago = (start + timedelta(hours=1)).isoformat().replace("+", "%2B")
    assert listed(f"occurred_before={hour_ago}") == ["fix", "old"]
    assert listed(f"occurred_after={hour_ago}") == ["new"]
    assert listed("adjustments=true") == ["fix"]
    assert listed("adjustments=false") == ["new", "old"]
    future = (start + timedelta(hours=3)).isoformat().replace("+", "%2B")
    assert listed(f"since={future}") == []
    for bad in ("metric=coffee", "since=yesterday", "occurred_after=2026-01-01T00:00", "tallied=1"):
        response = client.get(
            f"/api/v1/usage-events/?{bad}", HTTP_AUTHORIZATION=f"Bearer {world['key']}"
        )
        assert response.status_code == 400, bad
        assert response.json()["error"]["code"] == "invalid_filter"


def test_listing_pages_follow_a_cursor(client, world, django_assert_max_num_queries):
    _post(client, world, [_event(world, f"e{i:02d}") for i in range(25)])
    seen, url = [], "/api/v1/usage-events/?page_size=10"
    while url:
        with django_assert_max_num_queries(8):
            page = client.get(url, HTTP_AUTHORIZATION=f"Bearer {world['key']}").json()
        assert "count" not in page
        seen += [e["event_id"] for e in page["results"]]
        url = page["next"]
    assert sorted(seen) == [f"e{i:02d}" for i in range(25)]
    assert len(seen) == len(set(seen))
