"""Exactly once under concurrency and faults, with real worker processes on
the Redis broker and PostgreSQL locks (the tally cursor's row, the ingest
advisory lock)."""

from __future__ import annotations

import itertools
import time

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from licensing.models import License
from royalties.checks import CHECKS
from royalties.models import LicenseUsageTotals, TallyBatch, UsageEvent
from royalties.tally import tally_usage, untallied_count
from royalties.tasks import tally_usage_task
from royalties.usage import usage_events_ingest
from tests.celery_support import _database_url, running_worker, running_workers
from tests.factories import make_organization, make_performer, make_user
from tests.factories_marketplace import make_published_listing, make_sellable_recording
from tests.factories_royalties import buy

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _licenses(stripe_double, count: int) -> tuple[int, list[License]]:
    staff = make_user(email="reviewer@residuals.example", is_staff=True)
    performer = make_performer(email="p@performers.example", legal_name="Pia Performer")
    listings = [
        make_published_listing(
            performer,
            [
                make_sellable_recording(
                    performer, title=f"Take {i}", uses=("model_training", "commercial_deployment")
                )
            ],
            reviewer=staff,
            title=f"Listing {i}",
            uses=("model_training", "commercial_deployment"),
            per_unit_rates={"training_run": {"amount_minor": 333, "per": 7}},
        )
        for i in range(count)
    ]
    owner = make_user(email="owner@ai.example")
    organization = make_organization(owner=owner, name="Concurrent AI")
    return organization.pk, buy(
        stripe_double, organization=organization, buyer=owner, listings=listings
    )


def _report(organization_id: int, licenses: list[License], prefix: str, per_license: int) -> None:
    now = timezone.now().isoformat()
    events = []
    for license in licenses:
        for i in range(per_license):
            events.append(
                {
                    "event_id": f"{prefix}-{license.uid}-{i}",
                    "license": license.uid,
                    "metric": "downstream_revenue" if i % 2 else "training_run",
                    **({"amount_minor": 10_007, "currency": "USD"} if i % 2 else {"quantity": 3}),
                    "occurred_at": now,
                }
            )
    for start in range(0, len(events), 1000):
        results = usage_events_ingest(
            organization_id=organization_id, events=events[start : start + 1000]
        )
        assert all(r.status == "accepted" for r in results)


def _assert_counted_exactly_once():
    assert untallied_count() == 0
    # The batches' id ranges follow one another without overlap, and each
    # counted exactly the events in its range.
    batches = list(TallyBatch.objects.order_by("from_id"))
    for earlier, later in itertools.pairwise(batches):
        assert earlier.through_id <= later.from_id
    for batch in batches:
        in_range = UsageEvent.objects.filter(id__gt=batch.from_id, id__lte=batch.through_id)
        assert in_range.count() == batch.event_count
    assert sum(b.event_count for b in batches) == UsageEvent.objects.count()
    for name, check in CHECKS:
        assert check() == [], name
    for totals in LicenseUsageTotals.objects.all():
        events = UsageEvent.objects.filter(license_id=totals.license_id)
        runs = sum(e.quantity for e in events if e.metric == "training_run")
        revenue = sum(e.amount_minor for e in events if e.metric == "downstream_revenue")
        assert totals.quantities.get("training_run", 0) == runs
        assert totals.revenue_minor == revenue


def test_several_workers_tally_at_once(tmp_path, stripe_double):
    organization_id, licenses = _licenses(stripe_double, 6)
    _report(organization_id, licenses, "wave1", 400)
    with running_workers(tmp_path, 2, concurrency=2) as workers:
        # Small passes (97 and 250 ids), so the workers contend for the cursor.
        results = [tally_usage_task.delay(97) for _ in range(8)]
        _report(organization_id, licenses, "wave2", 200)  # more events arrive meanwhile
        results += [tally_usage_task.delay(250) for _ in range(4)]
        counted = sum(r.get(timeout=120)["events"] for r in results)
        assert all(w.process.poll() is None for w in workers)
    counted += sum(r.events for r in tally_usage())
    assert counted == UsageEvent.objects.count() == 6 * 600
    _assert_counted_exactly_once()


def _cursor_free() -> bool:
    """Whether no transaction holds the tally cursor's row (a killed worker's
    server process goes on until it notices its client is gone)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM royalties_tallycursor FOR UPDATE SKIP LOCKED")
        return cursor.fetchone() is not None


def _waiting_on_lock(database: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
            [database],
        )
        return cursor.fetchone()[0] > 0


def test_a_worker_killed_mid_tally_loses_and_doubles_nothing(tmp_path, stripe_double):
    organization_id, licenses = _licenses(stripe_double, 1)
    license = licenses[0]
    _report(organization_id, licenses, "first", 10)
    tally_usage()  # creates the license's running totals
    _report(organization_id, licenses, "second", 50)

    blocker = psycopg.connect(
        _database_url().replace("postgres://", "postgresql://"), autocommit=False
    )
    try:
        # Hold the totals row: the worker's tally will sum the events and post
        # the royalties, then wait here, its cursor row locked and not yet moved.
        blocker.execute(
            "SELECT 1 FROM royalties_licenseusagetotals WHERE license_id = %s FOR UPDATE",
            [license.pk],
        )
        with running_worker(tmp_path, pool="solo") as worker:
            tally_usage_task.delay()
            deadline = time.monotonic() + 60
            while not _waiting_on_lock(connection.settings_dict["NAME"]):
                assert time.monotonic() < deadline, worker.output()
                time.sleep(0.1)
            worker.kill()  # SIGKILL in the middle of the tally's transaction
    finally:
        blocker.rollback()
        blocker.close()

    # The killed worker's transaction never committed: nothing half-counted.
    deadline = time.monotonic() + 30
    while not _cursor_free():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert untallied_count() == 50
    assert TallyBatch.objects.count() == 1  # the first tally's only
    # Re-run: every event counted exactly once.
    tally_usage()
    tally_usage()
    _assert_counted_exactly_once()
