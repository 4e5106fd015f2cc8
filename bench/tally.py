"""Tally benchmark: the real tally (``royalties.tally.tally_usage``) over N
untallied events, against one hand-written SQL ``GROUP BY`` over the same
rows, and the cost of tallying 1,000 new events on top of a small and a
large history, in the same run.

    .venv/bin/python bench/tally.py [--events 1000000] [--licenses 24] [--rounds 5]
                                    [--max-events 500000]

The database (default ``residuals_bench_tally``; ``DATABASE_URL`` may name
another whose name contains "bench") is dropped, created and migrated at the
start and dropped at the end (``--keep`` leaves it).

Setup: the same buyer as ``bench/ingest.py`` — ``--licenses`` licenses sold
through checkout and fulfilment with the simulated gateway (this process
runs with ``DEBUG=1`` for that; the measured part runs with ``DEBUG`` off),
with a 20% revenue share above $10,000 and per-unit rates on inference calls
and training runs. The events are **generated in SQL** (``INSERT … SELECT``
over ``generate_series``) straight into ``royalties_usageevent``, not posted
through the API: loading a million that way takes seconds instead of a
minute, and the tally reads only the table. They are shaped as ingest
stores them — unique event ids, every metric the licenses permit, revenue
in the license's currency, ``occurred_at`` inside the license — except that
``body_sha256`` is the hash of a placeholder (nobody re-sends them).

1. **Small history**: 10,000 events are loaded and tallied, then
   ``VACUUM ANALYZE``; then ROUNDS times, 1,000 new events are loaded and
   the time of the ``tally_usage()`` that counts them is taken (10,000 to
   14,000 already tallied by default).
2. **Big tally**: N more events are loaded, then ``VACUUM ANALYZE`` (what
   autovacuum does after such a load; it is off on some servers, this one
   included). The hand-written SQL ``SELECT license_id, metric,
   sum(quantity), sum(amount_minor), count(*) … WHERE id > <the tally's
   watermark> GROUP BY 1, 2`` is timed over them (best of three, after one
   untimed run that warms the cache). Then ``tally_usage()`` counts them
   with a progress bar (it advances once per pass of up to
   ``--max-events`` ids). Its running totals are checked against the SQL
   sums, and the ratio tally/GROUP BY is printed (target ≤ 2×).
3. **Big history**: as in 1, with about N + 15,000 events already tallied:
   first right after the big tally, then after ``VACUUM ANALYZE``. The
   small- and big-history medians should be about the same (target: within
   1.5× — the cost should follow the new events, not the history). Every
   ledger check of ``royalties.checks`` must pass at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import (  # noqa: E402  (after the path is set)
    buyer_world,
    configure,
    database_url,
    drop_database,
    recreate_database,
)

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/residuals_bench_tally"
LOAD_CHUNK = 50_000
RATIO_TARGET = 2.0
FLAT_TARGET = 1.5

# One statement loads COUNT events for the given licenses, numbered from
# START: metrics in fixed proportions (5 in 10 inference calls, 2 revenue,
# one each of evaluation, training and fine-tune/deployment runs).
GENERATE_SQL = """
INSERT INTO royalties_usageevent
    (organization_id, license_id, event_id, metric, quantity, amount_minor, currency,
     occurred_at, model, note, adjusts_id, body_sha256, api_key_prefix, received_at)
SELECT
    %(organization)s,
    (%(licenses)s::bigint[])[1 + (g * 7 + g / 13) %% cardinality(%(licenses)s::bigint[])],
    'gen-' || g,
    m.metric,
    CASE m.metric
        WHEN 'inference_calls' THEN 1 + (g * 7919) %% 100000
        WHEN 'downstream_revenue' THEN 0
        ELSE 1
    END,
    CASE WHEN m.metric = 'downstream_revenue' THEN 100 + (g * 104729) %% 500000 END,
    CASE WHEN m.metric = 'downstream_revenue' THEN 'USD' ELSE '' END,
    %(occurred_at)s,
    'empathy-7b',
    '',
    NULL,
    encode(sha256(('gen-' || g)::bytea), 'hex'),
    'bench',
    now()
FROM generate_series(%(start)s::bigint, %(stop)s::bigint) AS g
CROSS JOIN LATERAL (
    SELECT CASE g %% 10
        WHEN 0 THEN 'inference_calls' WHEN 1 THEN 'inference_calls'
        WHEN 2 THEN 'inference_calls' WHEN 3 THEN 'inference_calls'
        WHEN 4 THEN 'inference_calls' WHEN 5 THEN 'downstream_revenue'
        WHEN 6 THEN 'downstream_revenue' WHEN 7 THEN 'evaluation_run'
        WHEN 8 THEN 'training_run'
        ELSE CASE WHEN g %% 20 = 9 THEN 'fine_tune_run' ELSE 'deployment' END
    END AS metric
) AS m
"""

# The least any tally must do: read the new events once and sum them.
SUM_SQL = """
SELECT license_id, metric, sum(quantity), sum(amount_minor), count(*)
FROM royalties_usageevent
WHERE id > %s
GROUP BY license_id, metric
"""


class Loader:
    """Generates events with consecutive numbers for the bench's licenses."""

    def __init__(self, world: dict):
        from licensing.models import License

        self.organization = world["organization_id"]
        self.licenses = list(
            License.objects.filter(uid__in=world["broad"]).values_list("pk", flat=True)
        )
        self.occurred_at = world["since"]
        self.next = 1

    def load(self, count: int, progress=None) -> None:
        from django.db import connection, transaction

        from royalties import watermark

        while count:
            size = min(count, LOAD_CHUNK)
            with transaction.atomic(), connection.cursor() as cursor:
                watermark.ingest_lock_shared(cursor)  # as every insert of usage events does
                cursor.execute(
                    GENERATE_SQL,
                    {
                        "organization": self.organization,
                        "licenses": self.licenses,
                        "occurred_at": self.occurred_at,
                        "start": self.next,
                        "stop": self.next + size - 1,
                    },
                )
            self.next += size
            count -= size
            if progress is not None:
                progress.update(size)


def timed_tally(max_events: int, progress=None) -> tuple[float, int]:
    from royalties.tally import tally_usage

    started = time.perf_counter()
    results = tally_usage(max_events=max_events, progress=progress)
    return time.perf_counter() - started, sum(r.events for r in results)


def incremental(loader: Loader, rounds: int, max_events: int) -> list[float]:
    """Seconds to tally 1,000 new events, ROUNDS times."""
    times = []
    for _ in range(rounds):
        loader.load(1000)
        seconds, counted = timed_tally(max_events)
        assert counted == 1000, counted
        times.append(seconds)
    return times


def sql_sums() -> tuple[float, dict]:
    """The hand-written GROUP BY over the events past the watermark: the
    best of three runs, and its sums."""
    from django.db import connection

    from royalties.watermark import tallied_through_id

    through = tallied_through_id()
    times = []
    with connection.cursor() as cursor:
        for _ in range(3):
            started = time.perf_counter()
            cursor.execute(SUM_SQL, [through])
            rows = cursor.fetchall()
            times.append(time.perf_counter() - started)
    return min(times), {(r[0], r[1]): (r[2] or 0, r[3] or 0, r[4]) for r in rows}


def vacuum() -> None:
    """What autovacuum would do after a big load (it is off on some servers,
    this one included)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE royalties_usageevent")


def check_totals(before: dict, sums: dict) -> None:
    """The tally's running totals advanced by exactly the SQL sums."""
    from royalties.models import LicenseUsageTotals

    after = {t.license_id: t for t in LicenseUsageTotals.objects.all()}
    for (license_id, metric), (quantity, amount, _) in sums.items():
        old_q, old_rev = before.get(license_id, ({}, 0))
        totals = after[license_id]
        got = totals.quantities.get(metric, 0) - old_q.get(metric, 0)
        assert got == quantity, (license_id, metric, got, quantity)
        if metric == "downstream_revenue":
            assert totals.revenue_minor - old_rev == amount, (license_id, totals.revenue_minor)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the big tally")
    parser.add_argument("--licenses", type=int, default=24, help="licenses the events use")
    parser.add_argument("--rounds", type=int, default=5, help="1,000-event tallies per history")
    parser.add_argument(
        "--max-events",
        type=int,
        default=None,
        help="event ids per tally pass (default: royalties.tally.MAX_EVENTS_PER_PASS)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database at the end")
    args = parser.parse_args()

    os.environ.setdefault("DATABASE_URL", DEFAULT_URL)
    max_events = args.max_events
    url = database_url()
    recreate_database(url)
    try:
        with tempfile.TemporaryDirectory(prefix="residuals-bench-tally-") as tmp:
            configure(Path(tmp), url)
            started = time.perf_counter()
            world = buyer_world(args.licenses)
            print(f"Sold {args.licenses + 1} licenses in {time.perf_counter() - started:.0f} s.")
            from django.conf import settings
            from tqdm import tqdm

            from royalties.checks import CHECKS
            from royalties.models import LicenseUsageTotals, UsageEvent
            from royalties.tally import MAX_EVENTS_PER_PASS

            max_events = max_events or MAX_EVENTS_PER_PASS

            settings.DEBUG = False  # no query log while measuring
            loader = Loader(world)

            loader.load(10_000)
            timed_tally(max_events)
            vacuum()
            small_from = UsageEvent.objects.count()
            small = incremental(loader, args.rounds, max_events)

            with tqdm(total=args.events, unit="ev", unit_scale=True, desc="Loading") as bar:
                loader.load(args.events, bar)
            vacuum()
            sql_sums()  # warm the cache for both sides alike
            sql_seconds, sums = sql_sums()
            assert sum(n for _, _, n in sums.values()) == args.events
            before = {
                t.license_id: (dict(t.quantities), t.revenue_minor)
                for t in LicenseUsageTotals.objects.all()
            }
            with tqdm(total=args.events, unit="ev", unit_scale=True, desc="Tallying") as bar:
                tally_seconds, counted = timed_tally(
                    max_events, lambda result: bar.update(result.events)
                )
            assert counted == args.events, counted
            check_totals(before, sums)

            fresh_from = UsageEvent.objects.count()
            fresh = incremental(loader, args.rounds, max_events)
            vacuum()
            big_from = UsageEvent.objects.count()
            big = incremental(loader, args.rounds, max_events)
            failed = [name for name, check in CHECKS if check()]
            if failed:
                print(f"LEDGER CHECKS FAILED: {', '.join(failed)}")
                return 1

            def history(first: int) -> str:
                return f"{first:,}–{first + 1000 * (args.rounds - 1):,}"

            def each(times: list[float]) -> str:
                return ", ".join(f"{t * 1000:.0f}" for t in times)

            ratio = tally_seconds / sql_seconds
            small_median, big_median = statistics.median(small), statistics.median(big)
            flat = big_median / small_median
            rate = args.events / tally_seconds
            print()
            print(f"Tally of {args.events:,} events ({args.licenses} licenses, "
                  f"passes of up to {max_events:,} ids): "
                  f"{tally_seconds:.2f} s ({rate:,.0f} events/s)")  # fmt: skip
            print(f"Hand-written SQL GROUP BY over the same rows: {sql_seconds:.2f} s")
            print(f"Ratio tally/SQL: {ratio:.1f}× — target ≤ {RATIO_TARGET:.0f}×: "
                  f"{'met' if ratio <= RATIO_TARGET else 'MISSED'}")  # fmt: skip
            print(f"Tally of 1,000 new events (median of {args.rounds}, in ms):")
            print(f"  {small_median * 1000:5.0f} with {history(small_from)} already tallied "
                  f"({each(small)})")  # fmt: skip
            print(f"  {big_median * 1000:5.0f} with {history(big_from)} already tallied "
                  f"({each(big)})")  # fmt: skip
            print(f"  {statistics.median(fresh) * 1000:5.0f} with {history(fresh_from)}, right "
                  f"after the big tally ({each(fresh)})")  # fmt: skip
            print(f"Ratio big/small history: {flat:.2f} — target about the same "
                  f"(≤ {FLAT_TARGET}×): {'met' if flat <= FLAT_TARGET else 'MISSED'}")  # fmt: skip
            print("Running totals equal the SQL sums; every ledger check passes.")
    finally:
        if not args.keep:
            drop_database(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
