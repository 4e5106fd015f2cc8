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
        candidates = list(
            UsageEvent.objects.filter(tally_batch__isnull=True)
            .values_list("license_id", flat=True)
            .distinct()[: max_licenses * 4]
        )
        if not candidates:
            return PassResult(None, 0, 0)
        locking = License.objects.filter(pk__in=candidates).order_by("pk")
        if connection.features.has_select_for_update_skip_locked:
            locking = locking.select_for_update(skip_locked=True, of=("self",))
        licenses = {lic.pk: lic for lic in locking.select_related("organization")[:max_licenses]}
        if not licenses:
            return PassResult(None, 0, 0)
        batch = TallyBatch.objects.create(worker=f"{socket.gethostname()}")
        marked = UsageEvent.objects.filter(
            license_id__in=list(licenses), tally_batch__isnull=True
        ).update(tally_batch=batch)
        sums = (
            UsageEvent.objects.filter(tally_batch=batch)
            .values("license_id", "metric")
            .annotate(quantity=Sum("quantity"), amount=Sum("amount_minor"), events=Count("id"))
        )
        per_license: dict[int, dict[str, tuple[int, int]]] = defaultdict(dict)
        for row in sums:
            per_license[row["license_id"]][row["metric"]] = (
                row["quantity"] or 0,
                row["amount"] or 0,
            )
        for license_id, metrics in per_license.items():
            _apply(licenses[license_id], metrics, batch)
        batch.event_count = marked
        batch.license_count = len(per_license)
        batch.save(update_fields=["event_count", "license_count"])
    return PassResult(batch.pk, len(per_license), marked)


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


def _apply(license: License, metrics: dict[str, tuple[int, int]], batch: TallyBatch) -> None:
    totals, _ = LicenseUsageTotals.objects.get_or_create(license=license)
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
        people = _performers(list(net_by_performer))
        lines = [
            Line(
                ledger.buyer_receivable(license.organization, currency), sum(d[1] for d in deltas)
            ),
            Line(
                ledger.platform_account(ledger.PLATFORM_REVENUE, currency),
                -sum(d[2] for d in deltas),
            ),
        ]
        lines += [
            Line(ledger.performer_account(people[pid], "pending", currency), -amount)
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
    return results


def untallied_count() -> int:
    return UsageEvent.objects.filter(tally_batch__isnull=True).count()
