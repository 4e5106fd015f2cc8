"""The tally: turn untallied usage events into royalties, exactly once.

One pass (``tally_pass``) takes up to ``max_licenses`` licenses that have
untallied events and locks their rows with SKIP LOCKED, so several workers
tally different licenses at the same time and never the same one. In one
transaction it then

1. marks those licenses' untallied events with a new TallyBatch (an UPDATE
   limited to events with no batch — each event is marked at most once);
2. sums exactly the events it marked, per license and metric, in SQL;
3. advances the license's running totals and computes, from the license's
   frozen terms, the royalties owed so far:
     revenue share  = share_bps × max(0, cumulative revenue − threshold) // 10,000
     per-unit rate  = cumulative quantity × amount_minor // per   (per metric)
   and the platform fee and performers' parts of that total
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


def _apply(license: License, metrics: dict[str, tuple[int, int]], batch: TallyBatch) -> None:
    totals, _ = LicenseUsageTotals.objects.get_or_create(license=license)
    quantities = dict(totals.quantities)
    for metric, (quantity, amount) in metrics.items():
        quantities[metric] = quantities.get(metric, 0) + quantity
        if metric == "downstream_revenue":
            totals.revenue_minor += amount
    totals.quantities = quantities

    terms = license.terms
    owed_by_metric = royalties_owed(terms, quantities, totals.revenue_minor)
    owed = sum(owed_by_metric.values())
    fee = percentage_of(owed, settings.PLATFORM_FEE_BPS) if owed > 0 else 0
    parts = (
        {str(pid): part for pid, part in performer_parts(owed - fee, terms).items()}
        if owed > 0
        else {}
    )

    delta_owed = owed - totals.royalty_owed_minor
    delta_fee = fee - totals.fee_minor
    previous_parts = totals.performer_parts
    delta_parts = {
        pid: parts.get(pid, 0) - previous_parts.get(pid, 0)
        for pid in set(parts) | set(previous_parts)
    }
    if delta_owed or delta_fee or any(delta_parts.values()):
        currency = license.currency
        lines = [
            Line(ledger.buyer_receivable(license.organization, currency), delta_owed),
            Line(ledger.platform_account(ledger.PLATFORM_REVENUE, currency), -delta_fee),
        ]
        performers = _performers([int(pid) for pid in delta_parts])
        lines += [
            Line(ledger.performer_account(performers[int(pid)], "pending", currency), -amount)
            for pid, amount in sorted(delta_parts.items(), key=lambda item: int(item[0]))
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
        previous_by_metric = totals.by_metric_minor
        RoyaltyAccrual.objects.bulk_create(
            [
                RoyaltyAccrual(
                    license=license,
                    tally_batch=batch,
                    journal_entry=entry,
                    metric=metric,
                    amount_minor=owed_by_metric.get(metric, 0) - previous_by_metric.get(metric, 0),
                    currency=currency,
                )
                for metric in sorted(set(owed_by_metric) | set(previous_by_metric))
                if owed_by_metric.get(metric, 0) != previous_by_metric.get(metric, 0)
            ]
        )
    totals.royalty_owed_minor = owed
    totals.fee_minor = fee
    totals.performer_parts = parts
    totals.by_metric_minor = owed_by_metric
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
