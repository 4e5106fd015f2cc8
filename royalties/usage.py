"""Usage reporting: validate a batch of buyer-reported events and store the
good ones durably, exactly once.

Each event is judged on its own: a bad event never blocks the good ones in
the same request. An ``event_id`` is unique per organization: the same id
with the same body is a harmless ``duplicate``; with a different body it is
refused as ``conflicting_duplicate``. Stored events are never edited; a
correction is a new event whose ``adjusts`` names the original.

Stable rejection codes: invalid_event, license_not_found,
license_not_active_at_time, reporting_window_closed, metric_not_permitted,
currency_mismatch, amount_required, amount_not_allowed, occurred_in_future,
adjustment_target_not_found, adjustment_mismatch, adjustment_exceeds_original,
conflicting_duplicate.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from licensing.models import License
from royalties import watermark
from royalties.models import UsageEvent

MAX_EVENTS_PER_REQUEST = 1000
FUTURE_TOLERANCE = timedelta(minutes=5)
LATE_REPORTING_WINDOW = timedelta(days=35)
METRICS = set(UsageEvent.Metric.values)
FIELDS = {
    "event_id",
    "license",
    "metric",
    "quantity",
    "amount_minor",
    "currency",
    "occurred_at",
    "model",
    "note",
    "adjusts",
}

# Which permitted use (any of) a metric needs.
METRIC_USES = {
    "training_run": {"model_training", "research_only"},
    "fine_tune_run": {"fine_tuning"},
    "evaluation_run": {"evaluation", "research_only", "model_training"},
    "inference_calls": {"commercial_deployment", "synthetic_generation"},
    "deployment": {"commercial_deployment", "synthetic_generation"},
    "downstream_revenue": {"commercial_deployment", "synthetic_generation"},
}


@dataclass
class EventResult:
    index: int
    event_id: str | None
    status: str  # accepted, duplicate, rejected
    code: str = ""
    message: str = ""
    field: str = ""

    def as_dict(self) -> dict:
        body = {"index": self.index, "event_id": self.event_id, "status": self.status}
        if self.status == "rejected":
            body["error"] = {"code": self.code, "message": self.message}
            if self.field:
                body["error"]["field"] = self.field
        return body


@dataclass
class _Candidate:
    index: int
    raw: dict
    event_id: str
    license_ref: str
    metric: str
    quantity: int
    amount_minor: int | None
    currency: str
    occurred_at: datetime
    model: str
    note: str
    adjusts_ref: str | None
    body_sha256: str
    license: License | None = None
    adjusts_pk: int | None = None
    extra: dict = field(default_factory=dict)


class _Reject(Exception):
    def __init__(self, code: str, message: str, field: str = ""):
        super().__init__(message)
        self.code, self.message, self.field = code, message, field


def body_hash(raw: dict) -> str:
    return hashlib.sha256(
        json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()


def _int(raw: dict, name: str, *, required: bool) -> int | None:
    value = raw.get(name)
    if value is None:
        if required:
            raise _Reject("invalid_event", f"{name} is required.", name)
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Reject("invalid_event", f"{name} must be an integer.", name)
    if abs(value) > 10**15:
        raise _Reject("invalid_event", f"{name} is out of range.", name)
    return value


def _storable(text: str) -> bool:
    """PostgreSQL text holds no NUL, and UTF-8 has no unpaired surrogates
    (which a JSON body can carry as escapes)."""
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _parse(index: int, raw: object, now: datetime) -> _Candidate:
    if not isinstance(raw, dict):
        raise _Reject("invalid_event", "Each event must be a JSON object.")
    unknown = set(raw) - FIELDS
    if unknown:
        raise _Reject(
            "invalid_event", f"Unknown field(s): {', '.join(sorted(unknown))}.", sorted(unknown)[0]
        )
    event_id = raw.get("event_id")
    if not isinstance(event_id, str) or not 1 <= len(event_id) <= 100 or not event_id.isprintable():
        raise _Reject(
            "invalid_event",
            "event_id must be a printable string of 1 to 100 characters.",
            "event_id",
        )
    license_ref = raw.get("license")
    if isinstance(license_ref, bool) or not isinstance(license_ref, str | int) or license_ref == "":
        raise _Reject("invalid_event", "license must be a license id.", "license")
    metric = raw.get("metric")
    if metric not in METRICS:
        raise _Reject(
            "invalid_event", f"metric must be one of {', '.join(sorted(METRICS))}.", "metric"
        )
    adjusts = raw.get("adjusts")
    if adjusts is not None and (not isinstance(adjusts, str) or not 1 <= len(adjusts) <= 100):
        raise _Reject(
            "invalid_event", "adjusts must be the event_id of the event corrected.", "adjusts"
        )
    quantity = _int(raw, "quantity", required=False) or 0
    amount = _int(raw, "amount_minor", required=False)
    if adjusts is None and (quantity < 0 or (amount is not None and amount < 0)):
        raise _Reject(
            "invalid_event",
            "quantity and amount_minor must be ≥ 0 (send an adjustment to correct).",
            "quantity" if quantity < 0 else "amount_minor",
        )
    currency = raw.get("currency") or ""
    if metric == "downstream_revenue":
        if amount is None:
            raise _Reject(
                "amount_required",
                "downstream_revenue needs amount_minor and currency.",
                "amount_minor",
            )
        if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
            raise _Reject(
                "amount_required", "currency must be an ISO 4217 code such as USD.", "currency"
            )
        currency = currency.upper()
    elif amount is not None or currency:
        raise _Reject(
            "amount_not_allowed",
            "Only downstream_revenue carries amount_minor and currency.",
            "amount_minor",
        )
    occurred = raw.get("occurred_at")
    try:
        occurred_at = datetime.fromisoformat(occurred) if isinstance(occurred, str) else None
    except ValueError:
        occurred_at = None
    if occurred_at is None or occurred_at.tzinfo is None:
        raise _Reject(
            "invalid_event", "occurred_at must be an ISO 8601 time with a time zone.", "occurred_at"
        )
    if occurred_at > now + FUTURE_TOLERANCE:
        raise _Reject(
            "occurred_in_future", "occurred_at is more than 5 minutes in the future.", "occurred_at"
        )
    model, note = raw.get("model") or "", raw.get("note") or ""
    if not isinstance(model, str) or len(model) > 200:
        raise _Reject("invalid_event", "model is a string of at most 200 characters.", "model")
    if not isinstance(note, str) or len(note) > 2000:
        raise _Reject("invalid_event", "note is a string of at most 2000 characters.", "note")
    for name, text in (("license", license_ref), ("model", model), ("note", note)):
        if isinstance(text, str) and not _storable(text):
            raise _Reject(
                "invalid_event", f"{name} holds a NUL character or an unpaired surrogate.", name
            )
    if adjusts is not None and not _storable(adjusts):
        raise _Reject(
            "invalid_event", "adjusts holds a NUL character or an unpaired surrogate.", "adjusts"
        )
    return _Candidate(
        index=index,
        raw=raw,
        event_id=event_id,
        license_ref=str(license_ref),
        metric=metric,
        quantity=quantity,
        amount_minor=amount,
        currency=currency,
        occurred_at=occurred_at,
        model=model,
        note=note,
        adjusts_ref=adjusts,
        body_sha256=body_hash(raw),
    )


def _licenses(organization_id: int, refs: set[str]) -> dict[str, License]:
    uids = {r for r in refs if r.startswith("LIC-")}
    pks = {int(r) for r in refs if r.isdigit()}
    found: dict[str, License] = {}
    query = License.objects.filter(organization_id=organization_id).only(
        "id", "uid", "organization_id", "starts_at", "ends_at", "currency", "terms", "status"
    )
    for license in query.filter(uid__in=uids) if uids else []:
        found[license.uid] = license
    for license in query.filter(pk__in=pks) if pks else []:
        found[str(license.pk)] = license
    return found


def _check(candidate: _Candidate, now: datetime) -> None:
    license = candidate.license
    if license is None:
        raise _Reject(
            "license_not_found",
            f"No license {candidate.license_ref} for your organization.",
            "license",
        )
    if not license.starts_at <= candidate.occurred_at <= license.ends_at:
        raise _Reject(
            "license_not_active_at_time",
            f"License {license.uid} runs from {license.starts_at.isoformat()} to "
            f"{license.ends_at.isoformat()}; occurred_at is outside it.",
            "occurred_at",
        )
    if now > license.ends_at + LATE_REPORTING_WINDOW:
        raise _Reject(
            "reporting_window_closed",
            f"Usage under {license.uid} could be reported until 35 days after it ended.",
        )
    if not METRIC_USES[candidate.metric] & set(license.terms["permitted_uses"]):
        raise _Reject(
            "metric_not_permitted",
            f"License {license.uid} does not permit the use that {candidate.metric} reports.",
            "metric",
        )
    if candidate.metric == "downstream_revenue" and candidate.currency != license.currency:
        raise _Reject(
            "currency_mismatch",
            f"License {license.uid} is in {license.currency}; report revenue in that currency.",
            "currency",
        )


def usage_events_ingest(
    *, organization_id: int, events: list, api_key_prefix: str = "", now: datetime | None = None
) -> list[EventResult]:
    now = now or timezone.now()
    results: dict[int, EventResult] = {}
    candidates: list[_Candidate] = []
    first_in_request: dict[str, _Candidate] = {}
    for index, raw in enumerate(events):
        try:
            candidate = _parse(index, raw, now)
        except _Reject as reject:
            event_id = (
                raw.get("event_id")
                if isinstance(raw, dict) and isinstance(raw.get("event_id"), str)
                else None
            )
            results[index] = EventResult(
                index, event_id, "rejected", reject.code, reject.message, reject.field
            )
            continue
        earlier = first_in_request.get(candidate.event_id)
        if earlier is not None:
            same = earlier.body_sha256 == candidate.body_sha256
            results[index] = EventResult(
                index,
                candidate.event_id,
                "duplicate" if same else "rejected",
                "" if same else "conflicting_duplicate",
                ""
                if same
                else "The same event_id was sent twice in this request with different bodies.",
            )
            continue
        first_in_request[candidate.event_id] = candidate
        candidates.append(candidate)

    licenses = _licenses(organization_id, {c.license_ref for c in candidates})
    existing = {
        event_id: sha
        for event_id, sha, *_ in _stored(organization_id, [c.event_id for c in candidates])
    }
    adjust_refs = sorted({c.adjusts_ref for c in candidates if c.adjusts_ref})
    originals = {
        event_id: (event_id, pk, license_id, metric)
        for event_id, _, pk, license_id, metric in _stored(organization_id, adjust_refs)
    }

    to_insert: list[_Candidate] = []
    for candidate in candidates:
        if candidate.event_id in existing:
            same = existing[candidate.event_id] == candidate.body_sha256
            results[candidate.index] = _duplicate_result(candidate, same)
            continue
        candidate.license = licenses.get(candidate.license_ref)
        try:
            _check(candidate, now)
            if candidate.adjusts_ref:
                original = originals.get(candidate.adjusts_ref)
                if original is None:
                    raise _Reject(
                        "adjustment_target_not_found",
                        f"No accepted event {candidate.adjusts_ref} to adjust.",
                        "adjusts",
                    )
                if (original[2], original[3]) != (candidate.license.pk, candidate.metric):
                    raise _Reject(
                        "adjustment_mismatch",
                        "An adjustment must have the license and metric of the event it corrects.",
                        "adjusts",
                    )
                candidate.adjusts_pk = original[1]
        except _Reject as reject:
            results[candidate.index] = EventResult(
                candidate.index,
                candidate.event_id,
                "rejected",
                reject.code,
                reject.message,
                reject.field,
            )
            continue
        to_insert.append(candidate)

    plain = [c for c in to_insert if c.adjusts_pk is None]
    corrections = [c for c in to_insert if c.adjusts_pk is not None]
    inserted = _insert(organization_id, plain, api_key_prefix, now)
    if corrections:
        corrected, refused = _insert_adjustments(organization_id, corrections, api_key_prefix, now)
        inserted |= corrected
        for candidate, reject in refused:
            results[candidate.index] = EventResult(
                candidate.index,
                candidate.event_id,
                "rejected",
                reject.code,
                reject.message,
                reject.field,
            )
        refused_ids = {id(candidate) for candidate, _ in refused}
        to_insert = [c for c in to_insert if id(c) not in refused_ids]
    lost = [c for c in to_insert if c.event_id not in inserted]
    if lost:  # another request stored the same ids between our read and our insert
        stored = {
            event_id: sha
            for event_id, sha, *_ in _stored(organization_id, [c.event_id for c in lost])
        }
        for candidate in lost:
            results[candidate.index] = _duplicate_result(
                candidate, stored.get(candidate.event_id) == candidate.body_sha256
            )
    for candidate in to_insert:
        if candidate.event_id in inserted:
            results[candidate.index] = EventResult(candidate.index, candidate.event_id, "accepted")
    return [results[i] for i in range(len(events))]


def _stored(organization_id: int, event_ids: list[str]) -> list[tuple]:
    """(event_id, body_sha256, id, license_id, metric) of the organization's
    stored events among ``event_ids``.

    On PostgreSQL each id is one probe of the unique index on
    (organization, event_id), whatever the table's statistics say: the
    LATERAL … LIMIT 1 keeps the planner from turning the lookup into a scan
    of all the organization's events, which it does for a long ``IN (…)``
    list or a plain join when the statistics are missing or stale (hundreds
    of milliseconds a batch once an organization has a million events). The
    ids travel as one JSON array, cheaper to send than a quoted text[]."""
    if not event_ids:
        return []
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT wanted.event_id, e.body_sha256, e.id, e.license_id, e.metric
                FROM jsonb_array_elements_text(%s::jsonb) AS wanted(event_id)
                CROSS JOIN LATERAL (
                    SELECT body_sha256, id, license_id, metric
                    FROM royalties_usageevent
                    WHERE organization_id = %s AND event_id = wanted.event_id
                    LIMIT 1
                ) AS e
                """,
                [json.dumps(event_ids), organization_id],
            )
            return cursor.fetchall()
    return list(
        UsageEvent.objects.filter(
            organization_id=organization_id, event_id__in=event_ids
        ).values_list("event_id", "body_sha256", "id", "license_id", "metric")
    )


def _duplicate_result(candidate: _Candidate, same: bool) -> EventResult:
    if same:
        return EventResult(candidate.index, candidate.event_id, "duplicate")
    return EventResult(
        candidate.index,
        candidate.event_id,
        "rejected",
        "conflicting_duplicate",
        "An event with this event_id was already accepted with a different body; "
        "send a new event that adjusts it instead.",
        "event_id",
    )


def _insert_adjustments(
    organization_id: int, candidates: list[_Candidate], api_key_prefix: str, now: datetime
) -> tuple[set[str], list[tuple[_Candidate, _Reject]]]:
    """Store corrections, each only if it leaves the event it corrects at
    zero or more: the original's quantity (and amount) plus every correction
    of it, in the order received, never goes below zero, so a correction
    cannot cancel more than was reported, nor silently absorb later usage.
    The originals are locked for the transaction, so two requests
    correcting the same event at once are judged one after the other.
    Returns the event ids inserted and the corrections refused."""
    targets = sorted({c.adjusts_pk for c in candidates})
    refused: list[tuple[_Candidate, _Reject]] = []
    with transaction.atomic():
        reported = {
            pk: [quantity, amount or 0, adjusts_id]
            for pk, quantity, amount, adjusts_id in UsageEvent.objects.select_for_update()
            .filter(pk__in=targets)
            .order_by("pk")
            .values_list("pk", "quantity", "amount_minor", "adjusts_id")
        }
        for target, quantity, amount in UsageEvent.objects.filter(
            adjusts_id__in=targets
        ).values_list("adjusts_id", "quantity", "amount_minor"):
            reported[target][0] += quantity
            reported[target][1] += amount or 0
        accepted = []
        for candidate in candidates:
            left = reported[candidate.adjusts_pk]
            if left[2] is not None:
                refused.append(
                    (
                        candidate,
                        _Reject(
                            "adjustment_mismatch",
                            "An adjustment corrects an original report, not another adjustment: "
                            "name the original event in adjusts.",
                            "adjusts",
                        ),
                    )
                )
                continue
            quantity = left[0] + candidate.quantity
            amount = left[1] + (candidate.amount_minor or 0)
            if quantity < 0 or amount < 0:
                refused.append(
                    (
                        candidate,
                        _Reject(
                            "adjustment_exceeds_original",
                            f"This correction would leave event {candidate.adjusts_ref} below "
                            f"zero (quantity {quantity}, amount_minor {amount} after every "
                            "correction of it).",
                            "amount_minor" if amount < 0 else "quantity",
                        ),
                    )
                )
                continue
            left[0], left[1] = quantity, amount
            accepted.append(candidate)
        inserted = _insert(organization_id, accepted, api_key_prefix, now)
    return inserted, refused


def _insert(
    organization_id: int, candidates: list[_Candidate], api_key_prefix: str, now: datetime
) -> set[str]:
    """Insert in one statement; conflicts on (organization, event_id) are
    skipped, and the ids actually inserted are returned."""
    if not candidates:
        return set()
    if connection.vendor == "postgresql":
        # The rows travel as one JSON document: encoding it is one C call,
        # where a dozen typed arrays cost ~25 ms a batch of Python quoting.
        rows = json.dumps(
            [
                {
                    "l": c.license.pk,
                    "e": c.event_id,
                    "m": c.metric,
                    "q": c.quantity,
                    "a": c.amount_minor,
                    "c": c.currency,
                    "t": c.occurred_at.isoformat(),
                    "md": c.model,
                    "n": c.note,
                    "adj": c.adjusts_pk,
                    "h": c.body_sha256,
                }
                for c in candidates
            ],
            separators=(",", ":"),
        )
        sql = """
            INSERT INTO royalties_usageevent
                (organization_id, license_id, event_id, metric, quantity, amount_minor, currency,
                 occurred_at, model, note, adjusts_id, body_sha256, api_key_prefix, received_at)
            SELECT %s, l, e, m, q, a, c, t, md, n, adj, h, %s, %s
            FROM jsonb_to_recordset(%s::jsonb)
                 AS u(l bigint, e text, m text, q bigint, a bigint, c text, t timestamptz,
                      md text, n text, adj bigint, h text)
            ON CONFLICT (organization_id, event_id) DO NOTHING
            RETURNING event_id
        """
        with transaction.atomic(), connection.cursor() as cursor:
            # Until this transaction ends, the tally's watermark waits for it:
            # the ids it draws are never passed over (royalties.watermark).
            watermark.ingest_lock_shared(cursor)
            cursor.execute(sql, [organization_id, api_key_prefix, now, rows])
            return {row[0] for row in cursor.fetchall()}
    inserted = set()
    for c in candidates:  # the embedded SQLite database of `make run`
        try:
            with transaction.atomic():
                UsageEvent.objects.create(
                    organization_id=organization_id,
                    license=c.license,
                    event_id=c.event_id,
                    metric=c.metric,
                    quantity=c.quantity,
                    amount_minor=c.amount_minor,
                    currency=c.currency,
                    occurred_at=c.occurred_at,
                    model=c.model,
                    note=c.note,
                    adjusts_id=c.adjusts_pk,
                    body_sha256=c.body_sha256,
                    api_key_prefix=api_key_prefix,
                )
            inserted.add(c.event_id)
        except IntegrityError:
            pass
    return inserted
