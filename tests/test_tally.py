"""The tally: royalties from frozen terms, exactly once, whatever the batching."""

from __future__ import annotations

import itertools

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from royalties import ledger
from royalties.models import CapBreach, LicenseUsageTotals, RoyaltyAccrual, UsageEvent
from royalties.money import percentage_of
from royalties.splits import performer_parts
from royalties.tally import tally_pass, tally_usage, untallied_count
from royalties.usage import usage_events_ingest
from tests.factories_royalties import licensed_world

pytestmark = pytest.mark.django_db


def _report(world, events):
    results = usage_events_ingest(organization_id=world["organization"].pk, events=events)
    assert all(r.status == "accepted" for r in results), [r.as_dict() for r in results]


def _revenue(world, event_id, amount_minor):
    return {
        "event_id": event_id,
        "license": world["license"].uid,
        "metric": "downstream_revenue",
        "amount_minor": amount_minor,
        "currency": "USD",
        "occurred_at": timezone.now().isoformat(),
    }


def _balances(world):
    performer = world["performer"]
    return {
        "receivable": ledger.balance(ledger.buyer_receivable(world["organization"], "USD")),
        "pending": ledger.balance(ledger.performer_account(performer, "pending", "USD")),
        "revenue": ledger.balance(ledger.platform_account(ledger.PLATFORM_REVENUE, "USD")),
    }


def test_revenue_share_starts_above_the_threshold(stripe_double):
    world = licensed_world(stripe_double, price_minor=100_000)
    before = _balances(world)
    _report(world, [_revenue(world, "r1", 600_000)])  # $6,000: under the $10,000 threshold
    tally_usage()
    assert _balances(world) == before
    _report(world, [_revenue(world, "r2", 600_000)])  # cumulative $12,000: $2,000 above
    tally_usage()
    after = _balances(world)
    owed = 2000 * 200_000 // 10_000  # 20 % of $2,000 = $400.00
    fee = owed * 2000 // 10_000
    assert after["receivable"] - before["receivable"] == owed
    assert after["pending"] - before["pending"] == -(owed - fee)
    assert after["revenue"] - before["revenue"] == -fee
    accrual = RoyaltyAccrual.objects.get()
    assert (accrual.metric, accrual.amount_minor) == ("downstream_revenue", owed)
    assert untallied_count() == 0


def test_per_unit_rates_and_splits(stripe_double):
    world = licensed_world(
        stripe_double,
        co_performer_bps=3_333,
        per_unit_rates={"training_run": {"amount_minor": 5_001, "per": 1}},
    )
    _report(
        world,
        [
            {
                "event_id": f"run-{i}",
                "license": world["license"].uid,
                "metric": "training_run",
                "quantity": 1,
                "occurred_at": timezone.now().isoformat(),
            }
            for i in range(3)
        ],
    )
    tally_usage()
    owed = 3 * 5_001
    fee = percentage_of(owed, 2000)
    lead = ledger.balance(ledger.performer_account(world["performer"], "pending", "USD"))
    co = ledger.balance(ledger.performer_account(world["co_performer"], "pending", "USD"))
    assert -(lead + co) == owed - fee  # no cent created or lost
    assert -co == (owed - fee) * 3_333 // 10_000 or -co == (owed - fee) * 3_333 // 10_000 + 1


def test_a_tally_rerun_counts_nothing_twice(stripe_double):
    world = licensed_world(stripe_double)
    _report(world, [_revenue(world, "r1", 2_000_000)])
    tally_usage()
    first = _balances(world)
    assert tally_pass().events == 0
    call_command("tally_usage")
    assert _balances(world) == first


def test_adjustments_reduce_what_is_owed(stripe_double):
    world = licensed_world(stripe_double)
    _report(world, [_revenue(world, "r1", 2_000_000)])
    tally_usage()
    _report(world, [{**_revenue(world, "r1-fix", -500_000), "adjusts": "r1"}])
    tally_usage()
    totals = LicenseUsageTotals.objects.get(license=world["license"])
    assert totals.revenue_minor == 1_500_000
    assert _balances(world)["receivable"] == 2000 * (1_500_000 - 1_000_000) // 10_000


def test_usage_beyond_a_reuse_cap_is_flagged_and_still_counted(stripe_double):
    world = licensed_world(
        stripe_double,
        reuse_caps={"max_models_trained": 2},
        per_unit_rates={"training_run": {"amount_minor": 100, "per": 1}},
    )
    _report(
        world,
        [
            {
                "event_id": f"run-{i}",
                "license": world["license"].uid,
                "metric": "training_run",
                "quantity": 1,
                "occurred_at": timezone.now().isoformat(),
            }
            for i in range(3)
        ],
    )
    tally_usage()
    breach = CapBreach.objects.get()
    assert (breach.cap, breach.limit, breach.reported) == ("max_models_trained", 2, 3)
    assert LicenseUsageTotals.objects.get().quantities["training_run"] == 3

    # Staff review it; more training past the cap opens it again, audited.
    from core.models import AuditEvent

    CapBreach.objects.filter(pk=breach.pk).update(resolved_at=timezone.now())
    _report(
        world,
        [
            {
                "event_id": "run-3",
                "license": world["license"].uid,
                "metric": "training_run",
                "quantity": 1,
                "occurred_at": timezone.now().isoformat(),
            }
        ],
    )
    tally_usage()
    breach.refresh_from_db()
    assert (breach.reported, breach.resolved_at) == (4, None)
    actions = list(
        AuditEvent.objects.filter(action__startswith="usage.cap_exceeded").values_list(
            "action", flat=True
        )
    )
    assert sorted(actions) == ["usage.cap_exceeded", "usage.cap_exceeded_again"]


def test_batching_does_not_change_the_result_in_the_database(stripe_double):
    world = licensed_world(stripe_double)
    before = _balances(world)
    amounts = [300_000, 450_000, 1_234_567, 99, 777_777]
    for index, amount in enumerate(amounts):
        _report(world, [_revenue(world, f"r{index}", amount)])
        tally_usage()  # one event per batch
    one_by_one = _balances(world)
    total = sum(amounts)
    owed = 2000 * max(0, total - 1_000_000) // 10_000
    assert one_by_one["receivable"] - before["receivable"] == owed
    assert one_by_one["revenue"] - before["revenue"] == -percentage_of(owed, 2000)


events_strategy = st.lists(
    st.one_of(
        st.tuples(st.just("downstream_revenue"), st.integers(0, 3_000_000)),
        st.tuples(st.just("training_run"), st.integers(0, 5)),
    ),
    min_size=1,
    max_size=12,
)


@pytest.fixture
def rated_world(stripe_double):
    return licensed_world(
        stripe_double,
        co_performer_bps=3_333,
        per_unit_rates={"training_run": {"amount_minor": 1_001, "per": 3}},
    )


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(events=events_strategy, cuts=st.lists(st.integers(0, 12), max_size=6))
def test_any_batching_gives_the_same_royalties(rated_world, events, cuts):
    """Report the same events, tallying after each group: whatever the
    grouping, the ledger ends where one tally of everything would put it."""
    world = rated_world
    bounds = sorted({0, len(events), *[min(c, len(events)) for c in cuts]})
    with transaction.atomic():
        before = _balances(world)
        co_before = ledger.balance(
            ledger.performer_account(world["co_performer"], "pending", "USD")
        )
        for group_index, (start, end) in enumerate(itertools.pairwise(bounds)):
            batch = []
            for index in range(start, end):
                metric, value = events[index]
                event = {
                    "event_id": f"g{group_index}-e{index}",
                    "license": world["license"].uid,
                    "metric": metric,
                    "occurred_at": timezone.now().isoformat(),
                }
                if metric == "downstream_revenue":
                    event.update(amount_minor=value, currency="USD")
                else:
                    event["quantity"] = value
                batch.append(event)
            _report(world, batch)
            tally_usage()
        revenue = sum(v for m, v in events if m == "downstream_revenue")
        runs = sum(v for m, v in events if m == "training_run")
        expected, owed, fee = {}, 0, 0
        for metric_owed in (2000 * max(0, revenue - 1_000_000) // 10_000, runs * 1_001 // 3):
            if not metric_owed:
                continue
            metric_fee = percentage_of(metric_owed, 2000)
            owed, fee = owed + metric_owed, fee + metric_fee
            for pid, part in performer_parts(
                metric_owed - metric_fee, world["license"].terms
            ).items():
                expected[pid] = expected.get(pid, 0) + part
        got = _balances(world)
        co = ledger.balance(ledger.performer_account(world["co_performer"], "pending", "USD"))
        assert got["receivable"] - before["receivable"] == owed
        assert got["revenue"] - before["revenue"] == -fee
        assert before["pending"] - got["pending"] == expected.get(world["performer"].pk, 0)
        assert co_before - co == expected.get(world["co_performer"].pk, 0)
        transaction.set_rollback(True)


def _waiting_on_advisory_lock() -> bool:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event = 'advisory'"
        )
        return cursor.fetchone()[0] > 0


@pytest.mark.django_db(transaction=True)
def test_an_event_committed_after_a_later_one_is_never_passed_over(stripe_double):
    """A report draws id N and commits late; another draws N + 1 and commits
    at once. A tally that started in between must not move its watermark
    past N + 1 before N commits: it waits for the open report, then counts
    both, and a re-run counts nothing."""
    import threading
    import time

    from django.db import connection

    world = licensed_world(stripe_double)
    _report(world, [_revenue(world, "before", 100)])
    tally_usage()

    drawn, release, errors = threading.Event(), threading.Event(), []
    results = {}

    def slow_report():
        try:
            with transaction.atomic():
                _report(world, [_revenue(world, "slow", 2_000_000)])
                drawn.set()  # its id is drawn, its transaction still open
                assert release.wait(30)
        except Exception as exc:
            errors.append(exc)
            drawn.set()
        finally:
            connection.close()

    def tally():
        try:
            results["tally"] = tally_usage()
        finally:
            connection.close()

    reporter = threading.Thread(target=slow_report)
    reporter.start()
    assert drawn.wait(30) and not errors, errors
    _report(world, [_revenue(world, "fast", 500_000)])  # committed, with a larger id
    tallier = threading.Thread(target=tally)
    tallier.start()
    deadline = time.monotonic() + 30
    while not _waiting_on_advisory_lock():  # the tally waits for the open report
        assert time.monotonic() < deadline and tallier.is_alive()
        time.sleep(0.05)
    assert "tally" not in results
    release.set()
    reporter.join(30)
    tallier.join(30)
    assert not errors, errors
    ids = dict(UsageEvent.objects.values_list("event_id", "id"))
    assert ids["slow"] < ids["fast"]  # committed in the other order
    assert sum(r.events for r in results["tally"]) == 2
    assert untallied_count() == 0
    assert tally_pass().events == 0
    totals = LicenseUsageTotals.objects.get(license=world["license"])
    assert totals.revenue_minor == 100 + 2_000_000 + 500_000
    owed = 2000 * (2_500_100 - 1_000_000) // 10_000
    assert _balances(world)["receivable"] == owed


@pytest.mark.django_db(transaction=True)
def test_a_failed_watermark_read_releases_the_ingest_lock(stripe_double):
    """The tally's exclusive lock is a session lock: a read that fails while
    holding it (here, a lock timeout) must still release it, or every later
    report would wait on that connection for ever."""
    import psycopg
    from django.db import connection

    from royalties import watermark

    world = licensed_world(stripe_double)
    _report(world, [_revenue(world, "r1", 100)])
    settings_dict = connection.settings_dict
    dsn = {
        "host": settings_dict["HOST"] or "127.0.0.1",
        "port": settings_dict["PORT"] or 5432,
        "user": settings_dict["USER"],
        "dbname": settings_dict["NAME"],
    }
    with psycopg.connect(**dsn) as blocker, psycopg.connect(**dsn, autocommit=True) as probe:
        blocker.execute("LOCK TABLE royalties_usageevent IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(Exception, match="lock timeout"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '200ms'")
            watermark.committed_high_water()
        blocker.rollback()
        taken = probe.execute(
            "SELECT pg_try_advisory_lock(%s)", [watermark.INGEST_LOCK_KEY]
        ).fetchone()[0]
        assert taken, "the tally's connection still holds the ingest lock"
        probe.execute("SELECT pg_advisory_unlock(%s)", [watermark.INGEST_LOCK_KEY])
    # The connection is usable and a tally then counts the event once.
    assert sum(r.events for r in tally_usage()) == 1


def test_the_watermark_refuses_snapshots_older_than_the_lock(stripe_double):
    from django.db import connection

    from royalties import watermark

    with connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    with pytest.raises(RuntimeError, match="READ COMMITTED"):
        watermark.committed_high_water()


def test_ledger_check_sees_batches_that_miscount_the_watermark(stripe_double):
    from royalties.checks import tally_batches_cover_the_watermark
    from royalties.models import TallyBatch

    world = licensed_world(stripe_double)
    _report(world, [_revenue(world, "r1", 100), _revenue(world, "r2", 100)])
    tally_usage()
    assert tally_batches_cover_the_watermark() == []
    batch = TallyBatch.objects.get()
    TallyBatch.objects.create(from_id=batch.from_id, through_id=batch.through_id, event_count=1)
    problems = tally_batches_cover_the_watermark()
    assert any("overlapping" in p for p in problems), problems
    assert any("counted 3 events, but 2" in p for p in problems), problems


def test_ledger_check_sees_an_id_sequence_that_caches(stripe_double):
    from django.db import connection

    from royalties import watermark

    assert watermark.sequence_problems() == []
    with connection.cursor() as cursor:
        cursor.execute("ALTER SEQUENCE royalties_usageevent_id_seq CACHE 20")
    assert "caches 20 values" in " ".join(watermark.sequence_problems())
