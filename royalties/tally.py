"""The tally: turn new usage events into royalties, exactly once, without
ever writing to the events.

"Tallied" is a watermark on event ids (royalties.watermark): the singleton
TallyCursor holds the highest id already counted. One pass (``tally_pass``)
runs in one transaction:

1. locks the cursor row with SKIP LOCKED (when another worker holds it, that
   worker is tallying: this pass returns at once, having done nothing);
2. finds the highest id below which no event can still appear (an advisory
   lock waits out every inserting transaction in flight: see
   royalties.watermark), capped at ``max_events`` ids past the cursor;
3. sums the events in (cursor, upper] per license and metric, in SQL, in one
   query over the primary key's range;
4. advances each license's running totals and computes, from the license's
   frozen terms, the royalties owed so far, per metric:
     revenue share  = share_bps × max(0, cumulative revenue − threshold) // 10,000
     per-unit rate  = cumulative quantity × amount_minor // per
   and, per metric, the platform fee and the performers' parts of it
   (royalties.money's rounding rule, royalties.splits);
5. posts the difference from what was already posted as one balanced entry
   per license: debit buyer:<org>:receivable, credit each performer's pending
   balance and platform:revenue;
6. records the TallyBatch with its id range and moves the cursor to upper.

Because every figure is recomputed from cumulative totals, tallying events
in any batches gives the same result as tallying them at once. A worker that
dies mid-pass rolls its transaction back: the cursor has not moved and the
next pass counts the same range. Passes are serialized by the cursor row, so
the cost of one follows the new events, never the events already tallied.
"""

from __future__ import annotations

import json
import logging
import socket
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Sum
from django.utils import timezone

from core.services import audit_record
from licensing.models import License
from royalties import ledger, watermark
from royalties.ledger import Line
from royalties.models import (
    CapBreach,
    JournalEntry,
    LedgerAccount,
    LicenseUsageTotals,
    PerformerEarning,
    RoyaltyAccrual,
    TallyBatch,
    TallyCursor,
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


# Ids per pass: enough that a pass's fixed cost (~40 ms: the cursor, the
# watermark, one ledger entry per license, written in a constant number of
# statements) stays small beside its events (~0.2 s a million, one read of
# their rows), few enough that one transaction stays well under a second
# and a command's progress bar moves on a big backlog.
MAX_EVENTS_PER_PASS = 1_000_000


@dataclass
class PassResult:
    batch_id: int | None
    licenses: int
    events: int
    advanced: bool = False  # the cursor moved (a range of only rolled-back ids counts none)


def tally_pass(*, max_events: int = MAX_EVENTS_PER_PASS) -> PassResult:
    """Tally the events past the cursor, up to ``max_events`` ids. Returns
    how many it counted (none when nothing new was committed, or another
    worker is tallying right now)."""
    with transaction.atomic():
        cursor = _lock_cursor()
        if cursor is None:
            return PassResult(None, 0, 0)
        start = cursor.tallied_through_id
        upper = min(watermark.committed_high_water(), start + max_events)
        if upper <= start:
            return PassResult(None, 0, 0)
        per_license, counted = _sum_range(start, upper)
        batch = None
        if counted:
            batch = TallyBatch.objects.create(
                worker=socket.gethostname(),
                from_id=start,
                through_id=upper,
                event_count=counted,
                license_count=len(per_license),
            )
            licenses = License.objects.select_related("organization").in_bulk(per_license)
            totals = {
                t.license_id: t
                for t in LicenseUsageTotals.objects.filter(license_id__in=per_license)
            }
            accounts = _Accounts()
            postings, advanced = [], []
            for license_id, metrics in sorted(per_license.items()):
                license = licenses[license_id]
                row = totals.get(license_id) or LicenseUsageTotals(license=license)
                posting = _apply(license, metrics, batch, row, accounts)
                if posting is not None:
                    postings.append(posting)
                advanced.append(row)
            _post(postings, batch)
            _save_totals(advanced)
            for row in advanced:
                _check_caps(licenses[row.license_id], row.quantities, batch)
        cursor.tallied_through_id = upper
        cursor.save(update_fields=["tallied_through_id", "updated_at"])
    return PassResult(batch.pk if batch else None, len(per_license), counted, advanced=True)


def _lock_cursor() -> TallyCursor | None:
    """The cursor row, locked for this transaction; None when another worker
    holds it. Creates the row if it is missing (a flushed test database)."""
    for _ in range(2):
        locking = TallyCursor.objects.filter(pk=watermark.CURSOR_PK)
        if connection.features.has_select_for_update_skip_locked:
            locking = locking.select_for_update(skip_locked=True)
        cursor = locking.first()
        if cursor is not None:
            return cursor
        if TallyCursor.objects.filter(pk=watermark.CURSOR_PK).exists():
            return None  # locked: another worker is tallying
        try:
            with transaction.atomic():
                TallyCursor.objects.create(pk=watermark.CURSOR_PK)
        except IntegrityError:  # another worker created it first
            return None
    return None


def _sum_range(start: int, upper: int) -> tuple[dict[int, dict[str, tuple[int, int]]], int]:
    """Sums of the events with start < id <= upper per license and metric,
    (quantity, amount), and their number."""
    per_license: dict[int, dict[str, tuple[int, int]]] = defaultdict(dict)
    counted = 0
    rows = (
        UsageEvent.objects.filter(id__gt=start, id__lte=upper)
        .values_list("license_id", "metric")
        .annotate(Sum("quantity"), Sum("amount_minor"), Count("id"))
        .order_by()
    )
    for license_id, metric, quantity, amount, count in rows:
        per_license[license_id][metric] = (int(quantity or 0), int(amount or 0))
        counted += count
    return per_license, counted


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


@dataclass
class _Posting:
    """What one pass posts for one license."""

    license: License
    spec: ledger.EntrySpec
    deltas: list  # (metric, owed, fee, {performer id: (gross, fee, net)})


def _apply(
    license: License,
    metrics: dict[str, tuple[int, int]],
    batch: TallyBatch,
    totals: LicenseUsageTotals,
    accounts: _Accounts,
) -> _Posting | None:
    """Advance ``totals`` (in memory) by the license's new events; return
    the entry to post for the difference, if any."""
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
    totals.royalty_owed_minor = sum(split["owed"] for split in now.values())
    totals.fee_minor = sum(split["fee"] for split in now.values())
    totals.by_metric = now
    if not deltas:
        return None

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
        Line(pending[pid], -amount) for pid, amount in sorted(net_by_performer.items()) if amount
    ]
    spec = ledger.EntrySpec(
        kind=JournalEntry.Kind.ROYALTY_ACCRUAL,
        idempotency_key=f"royalty:batch:{batch.pk}:license:{license.pk}",
        lines=lines,
        memo=f"Royalties on license {license.uid}",
        source_type="tally_batch",
        source_id=str(batch.pk),
    )
    return _Posting(license, spec, deltas)


def _post(postings: list[_Posting], batch: TallyBatch) -> None:
    """One ledger entry per license, with its accruals and the performers'
    earnings: a constant number of INSERTs for the whole pass."""
    entries = ledger.post_entries([posting.spec for posting in postings])
    accruals, earnings = [], []
    for posting, entry in zip(postings, entries, strict=True):
        license, currency = posting.license, posting.license.currency
        for metric, owed, _, performers in posting.deltas:
            if owed:
                accruals.append(
                    RoyaltyAccrual(
                        license=license,
                        tally_batch=batch,
                        journal_entry=entry,
                        metric=metric,
                        amount_minor=owed,
                        currency=currency,
                    )
                )
            earnings += [
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
                for pid, (gross, fee, net) in sorted(performers.items())
            ]
    RoyaltyAccrual.objects.bulk_create(accruals)
    PerformerEarning.objects.bulk_create(earnings)


# The running totals of a pass, written back in one statement (Django's
# bulk_update builds a CASE per field and row: tens of ms for a few dozen).
_SAVE_TOTALS_SQL = """
UPDATE royalties_licenseusagetotals AS t
SET quantities = u.quantities, revenue_minor = u.revenue_minor,
    royalty_owed_minor = u.royalty_owed_minor, fee_minor = u.fee_minor,
    by_metric = u.by_metric, updated_at = %s
FROM jsonb_to_recordset(%s::jsonb) AS u(id bigint, quantities jsonb, revenue_minor bigint,
                                        royalty_owed_minor bigint, fee_minor bigint,
                                        by_metric jsonb)
WHERE t.id = u.id
"""


def _save_totals(totals: list[LicenseUsageTotals]) -> None:
    LicenseUsageTotals.objects.bulk_create([row for row in totals if row.pk is None])
    existing = [row for row in totals if row.pk is not None]
    if connection.vendor != "postgresql":  # the embedded SQLite database of `make run`
        for row in existing:
            row.save()
        return
    rows = [
        {
            "id": row.pk,
            "quantities": row.quantities,
            "revenue_minor": row.revenue_minor,
            "royalty_owed_minor": row.royalty_owed_minor,
            "fee_minor": row.fee_minor,
            "by_metric": row.by_metric,
        }
        for row in existing
    ]
    if rows:
        with connection.cursor() as cursor:
            cursor.execute(_SAVE_TOTALS_SQL, [timezone.now(), json.dumps(rows)])


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
            reopened = not created and breach.resolved_at is not None and reported > breach.reported
            if not created and breach.reported != reported:
                # Usage past a breach staff already reviewed opens it again.
                CapBreach.objects.filter(pk=breach.pk).update(
                    reported=reported, **({"resolved_at": None} if reopened else {})
                )
            if created or reopened:
                audit_record(
                    action="usage.cap_exceeded_again" if reopened else "usage.cap_exceeded",
                    target=license,
                    data={"cap": cap, "limit": limit, "reported": reported},
                )


@transaction.atomic
def cap_breach_mark_reviewed(*, breach_id: int, by, request=None, note: str = "") -> CapBreach:
    """Record that staff looked at a reuse-cap breach. The usage still counts
    and the breach stays on record; only ``resolved_at`` is set, once."""
    breach = CapBreach.objects.select_for_update().get(pk=breach_id)
    if breach.resolved_at is not None:
        return breach
    breach.resolved_at = timezone.now()
    breach.save(update_fields=["resolved_at"])
    audit_record(
        action="usage.cap_breach_reviewed",
        actor=by,
        target=breach,
        request=request,
        data={
            "license": breach.license_id,
            "cap": breach.cap,
            "limit": breach.limit,
            "reported": breach.reported,
            "note": note[:500],
        },
    )
    return breach


def tally_usage(
    *,
    max_events: int = MAX_EVENTS_PER_PASS,
    progress: Callable[[PassResult], None] | None = None,
) -> list[PassResult]:
    """Tally until nothing new is left (or another worker is tallying)."""
    results = []
    while True:
        result = tally_pass(max_events=max_events)
        if not result.advanced:
            break
        if result.events:
            results.append(result)
            if progress:
                progress(result)
    return results


def untallied_count() -> int:
    """Events committed (and visible) past the watermark."""
    return UsageEvent.objects.filter(watermark.untallied_q()).count()
