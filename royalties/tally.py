"""The tally: turn untallied usage events into royalties, exactly once.

One pass (``tally_pass``) takes up to ``max_licenses`` licenses that have
untallied events and locks their rows with SKIP LOCKED, so several workers
tally different licenses at the same time and never the same one. In one
transaction it then

1. marks those licenses' untallied events with a new TallyBatch (an UPDATE
   limited to events with no batch — each event is marked at most once);
2. sums exactly the events it marked, per license and metric, in SQL;
3. advances the license's running totals and computes, from the license's
   frozen terms, the royalties owed so far, per metric:
     revenue share  = share_bps × max(0, cumulative revenue − threshold) // 10,000
     per-unit rate  = cumulative quantity × amount_minor // per
   and, per metric, the platform fee and the performers' parts of it
   (royalties.money's rounding rule, royalties.splits);
4. posts the difference from what was already posted as one balanced entry:
   debit buyer:<org>:receivable, credit each performer's pending balance and
   platform:revenue.

Because every figure is recomputed from cumulative totals, tallying events
in any batches gives the same result as tallying them at once. A worker that
dies mid-pass rolls its transaction back: its events stay untallied for the
next pass.
"""

from __future__ import annotations

import logging
import socket
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Sum

from licensing.models import License
from royalties import ledger
from royalties.ledger import Line
from royalties.models import (
    CapBreach,
    JournalEntry,
    LedgerAccount,
    LicenseUsageTotals,
    PerformerEarning,
    RoyaltyAccrual,
    TallyBatch,
    UsageEvent,
)
from royalties.money import TOTAL_BPS, percentage_of
from royalties.splits import performer_parts

logger = logging.getLogger(__name__)

# Reuse caps and the metric whose cumulative quantity they limit.
CAP_METRICS = {
    "max_models_trained": "training_run",
    "max_fine_tunes": "fine_tune_run",
    "max_deployments": "deployment",
}


def royalties_owed(terms: dict, quantities: dict[str, int], revenue_minor: int) -> dict[str, int]:
    """Royalty owed so far under ``terms``, per metric, from cumulative usage."""
    owed = {}
    share = terms.get("revenue_share_bps", 0)
    threshold = terms.get("revenue_threshold_minor", 0)
    if share:
        owed["downstream_revenue"] = share * max(0, revenue_minor - threshold) // TOTAL_BPS
    for metric, rate in (terms.get("per_unit_rates") or {}).items():
        units = max(0, quantities.get(metric, 0))
        owed[metric] = units * rate["amount_minor"] // rate["per"]
    return {metric: amount for metric, amount in owed.items() if amount}


@dataclass
class PassResult:
    batch_id: int | None
    licenses: int
    events: int


def tally_pass(*, max_licenses: int = 200) -> PassResult:
    """Tally one group of licenses. Returns how many events it counted (0
    when nothing was left, or every license with new events is being
    tallied by another worker right now)."""
    with transaction.atomic():
        candidates = _licenses_with_untallied(max_licenses * 4)
        if not candidates:
            return PassResult(None, 0, 0)
        locking = License.objects.filter(pk__in=candidates).order_by("pk")
        if connection.features.has_select_for_update_skip_locked:
            locking = locking.select_for_update(skip_locked=True, of=("self",))
        licenses = {lic.pk: lic for lic in locking.select_related("organization")[:max_licenses]}
        if not licenses:
            return PassResult(None, 0, 0)
        batch = TallyBatch.objects.create(worker=f"{socket.gethostname()}")
        per_license, marked = _mark_and_sum(batch, sorted(licenses))
        totals = {
            t.license_id: t for t in LicenseUsageTotals.objects.filter(license_id__in=per_license)
        }
        accounts = _Accounts()
        for license_id, metrics in sorted(per_license.items()):
            license = licenses[license_id]
            _apply(
                license,
                metrics,
                batch,
                totals.get(license_id) or LicenseUsageTotals(license=license),
                accounts,
            )
        batch.event_count = marked
        batch.license_count = len(per_license)
        batch.save(update_fields=["event_count", "license_count"])
    return PassResult(batch.pk, len(per_license), marked)


# Licenses with untallied events, in id order, found by skipping through the
# partial index of untallied events (usage_event_untallied) one license at a
# time: the cost follows the number of such licenses, not the number of
# events, tallied or not. The plain index scans this makes also mark the
# index entries of row versions an earlier pass left dead, so later scans
# skip them even before VACUUM has removed them.
_PENDING_LICENSES_SQL = """
WITH RECURSIVE pending(license_id) AS (
    (SELECT license_id FROM royalties_usageevent
     WHERE tally_batch_id IS NULL ORDER BY license_id LIMIT 1)
    UNION ALL
    SELECT (SELECT e.license_id FROM royalties_usageevent e
            WHERE e.tally_batch_id IS NULL AND e.license_id > pending.license_id
            ORDER BY e.license_id LIMIT 1)
    FROM pending
    WHERE pending.license_id IS NOT NULL
)
SELECT license_id FROM pending WHERE license_id IS NOT NULL LIMIT %s
"""

# Marks the licenses' untallied events with the batch and sums exactly the
# rows it marked, in one statement: one pass over the new events.
_MARK_AND_SUM_SQL = """
WITH marked AS (
    UPDATE royalties_usageevent SET tally_batch_id = %s
    WHERE license_id = ANY(%s::bigint[]) AND tally_batch_id IS NULL
    RETURNING license_id, metric, quantity, amount_minor
)
SELECT license_id, metric, sum(quantity), sum(amount_minor), count(*)
FROM marked
GROUP BY license_id, metric
"""


def _licenses_with_untallied(limit: int) -> list[int]:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_PENDING_LICENSES_SQL, [limit])
            return [row[0] for row in cursor.fetchall()]
    return list(  # the embedded SQLite database of `make run`
        UsageEvent.objects.filter(tally_batch__isnull=True)
        .order_by("license_id")
        .values_list("license_id", flat=True)
        .distinct()[:limit]
    )


def _mark_and_sum(
    batch: TallyBatch, license_ids: list[int]
) -> tuple[dict[int, dict[str, tuple[int, int]]], int]:
    """Mark the untallied events of ``license_ids`` with ``batch``; return
    their sums per license and metric, (quantity, amount), and their number."""
    per_license: dict[int, dict[str, tuple[int, int]]] = defaultdict(dict)
    marked = 0
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_MARK_AND_SUM_SQL, [batch.pk, license_ids])
            rows = cursor.fetchall()
    else:
        UsageEvent.objects.filter(license_id__in=license_ids, tally_batch__isnull=True).update(
            tally_batch=batch
        )
        rows = (
            UsageEvent.objects.filter(tally_batch=batch)
            .values_list("license_id", "metric")
            .annotate(Sum("quantity"), Sum("amount_minor"), Count("id"))
            .order_by()
        )
    for license_id, metric, quantity, amount, count in rows:
        per_license[license_id][metric] = (int(quantity or 0), int(amount or 0))
        marked += count
    return per_license, marked


class _Accounts:
    """The ledger accounts one pass posts to, each looked up once."""

    def __init__(self):
        self._found: dict[tuple, LedgerAccount] = {}

    def _get(self, key: tuple, make: Callable[[], LedgerAccount]) -> LedgerAccount:
        if key not in self._found:
            self._found[key] = make()
        return self._found[key]

    def receivable(self, organization, currency: str) -> LedgerAccount:
        return self._get(
            ("receivable", organization.pk, currency),
            lambda: ledger.buyer_receivable(organization, currency),
        )

    def revenue(self, currency: str) -> LedgerAccount:
        return self._get(
            ("revenue", currency),
            lambda: ledger.platform_account(ledger.PLATFORM_REVENUE, currency),
        )

    def pending(self, performer_ids: list[int], currency: str) -> dict[int, LedgerAccount]:
        missing = [pid for pid in performer_ids if ("pending", pid, currency) not in self._found]
        if missing:
            people = _performers(missing)
            for pid in missing:
                self._found[("pending", pid, currency)] = ledger.performer_account(
                    people[pid], "pending", currency
                )
        return {pid: self._found[("pending", pid, currency)] for pid in performer_ids}


def metric_split(owed_minor: int, terms: dict) -> dict:
    """Cumulative fee and performers' parts of what one metric has earned."""
    if owed_minor <= 0:
        return {"owed": 0, "fee": 0, "net": {}, "gross": {}}
    fee = percentage_of(owed_minor, settings.PLATFORM_FEE_BPS)
    return {
        "owed": owed_minor,
        "fee": fee,
        "net": {str(pid): part for pid, part in performer_parts(owed_minor - fee, terms).items()},
        "gross": {str(pid): part for pid, part in performer_parts(owed_minor, terms).items()},
    }


def _apply(
    license: License,
    metrics: dict[str, tuple[int, int]],
    batch: TallyBatch,
    totals: LicenseUsageTotals,
    accounts: _Accounts,
) -> None:
    quantities = dict(totals.quantities)
    for metric, (quantity, amount) in metrics.items():
        quantities[metric] = quantities.get(metric, 0) + quantity
        if metric == "downstream_revenue":
            totals.revenue_minor += amount
    totals.quantities = quantities

    owed_by_metric = royalties_owed(license.terms, quantities, totals.revenue_minor)
    now = {metric: metric_split(owed, license.terms) for metric, owed in owed_by_metric.items()}
    before = totals.by_metric
    empty = {"owed": 0, "fee": 0, "net": {}, "gross": {}}
    deltas = []  # (metric, owed, fee, {pid: (gross, fee, net)})
    for metric in sorted(set(now) | set(before)):
        new, old = now.get(metric, empty), before.get(metric, empty)
        performers = {}
        for pid in set(new["net"]) | set(old["net"]) | set(new["gross"]) | set(old["gross"]):
            gross = new["gross"].get(pid, 0) - old["gross"].get(pid, 0)
            net = new["net"].get(pid, 0) - old["net"].get(pid, 0)
            if gross or net:
                performers[int(pid)] = (gross, gross - net, net)
        if new["owed"] != old["owed"] or new["fee"] != old["fee"] or performers:
            deltas.append((metric, new["owed"] - old["owed"], new["fee"] - old["fee"], performers))

    if deltas:
        currency = license.currency
        net_by_performer: dict[int, int] = defaultdict(int)
        for _, _, _, performers in deltas:
            for pid, (_, _, net) in performers.items():
                net_by_performer[pid] += net
        pending = accounts.pending(
            sorted(pid for pid, amount in net_by_performer.items() if amount), currency
        )
        lines = [
            Line(accounts.receivable(license.organization, currency), sum(d[1] for d in deltas)),
            Line(accounts.revenue(currency), -sum(d[2] for d in deltas)),
        ]
        lines += [
            Line(pending[pid], -amount)
            for pid, amount in sorted(net_by_performer.items())
            if amount
        ]
        entry = ledger.post_entry(
            kind=JournalEntry.Kind.ROYALTY_ACCRUAL,
            idempotency_key=f"royalty:batch:{batch.pk}:license:{license.pk}",
            lines=lines,
            memo=f"Royalties on license {license.uid}",
            source_type="tally_batch",
            source_id=str(batch.pk),
        )
        RoyaltyAccrual.objects.bulk_create(
            [
                RoyaltyAccrual(
                    license=license,
                    tally_batch=batch,
                    journal_entry=entry,
                    metric=metric,
                    amount_minor=owed,
                    currency=currency,
                )
                for metric, owed, _, _ in deltas
                if owed
            ]
        )
        PerformerEarning.objects.bulk_create(
            [
                PerformerEarning(
                    performer_id=pid,
                    journal_entry=entry,
                    license=license,
                    kind=PerformerEarning.Kind.ROYALTY,
                    metric=metric,
                    gross_minor=gross,
                    fee_minor=fee,
                    net_minor=net,
                    currency=currency,
                )
                for metric, _, _, performers in deltas
                for pid, (gross, fee, net) in sorted(performers.items())
            ]
        )
    totals.royalty_owed_minor = sum(split["owed"] for split in now.values())
    totals.fee_minor = sum(split["fee"] for split in now.values())
    totals.by_metric = now
    totals.save()
    _check_caps(license, quantities, batch)


def _performers(ids: list[int]):
    from accounts.models import PerformerProfile

    return PerformerProfile.objects.in_bulk(ids)


def _check_caps(license: License, quantities: dict[str, int], batch: TallyBatch) -> None:
    for cap, limit in (license.terms.get("reuse_caps") or {}).items():
        metric = CAP_METRICS.get(cap)
        reported = quantities.get(metric, 0) if metric else 0
        if metric and reported > limit:
            breach, created = CapBreach.objects.get_or_create(
                license=license,
                cap=cap,
                defaults={"limit": limit, "reported": reported, "tally_batch": batch},
            )
            if not created and breach.reported != reported:
                CapBreach.objects.filter(pk=breach.pk).update(reported=reported)
            if created:
                from core.services import audit_record

                audit_record(
                    action="usage.cap_exceeded",
                    target=license,
                    data={"cap": cap, "limit": limit, "reported": reported},
                )


def tally_usage(
    *, max_licenses: int = 200, progress: Callable[[PassResult], None] | None = None
) -> list[PassResult]:
    """Tally until nothing untallied is left that this worker can lock."""
    results = []
    while True:
        result = tally_pass(max_licenses=max_licenses)
        if not result.events:
            break
        results.append(result)
        if progress:
            progress(result)
    _refresh_statistics(sum(r.events for r in results))
    return results


def _refresh_statistics(marked: int) -> None:
    """After marking a large part of the table, refresh the planner's idea
    of how many events are untallied, as autovacuum would (it counts on 10%
    of the rows changed) but without waiting for it. With the old figure —
    nearly every event untallied — the next pass would plan its marking
    UPDATE as a scan of the whole table instead of the partial index of
    untallied events. SKIP_LOCKED: if another worker is analyzing, its
    figures will do."""
    if not marked or connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples FROM pg_class WHERE oid = 'royalties_usageevent'::regclass"
        )
        (rows,) = cursor.fetchone()
        if marked >= max(10_000, 0.1 * rows):
            cursor.execute("ANALYZE (SKIP_LOCKED) royalties_usageevent (tally_batch_id)")


def untallied_count() -> int:
    return UsageEvent.objects.filter(tally_batch__isnull=True).count()
