"""Writes for the catalogue: recordings, provenance, consent, signatures,
splits, listings and their review, and the catalogue index.

Rules that must hold (DESIGN.md invariants 5, 6 and 8):
- a listing's permitted uses never exceed the active consent of any of its
  recordings, and a recording without active consent is never for sale;
- a recording with missing provenance cannot be listed;
- bad input raises ``core.errors.ValidationError`` naming the field, inside a
  transaction, so nothing is half-saved;
- withdrawing consent, or narrowing it below a listing's permitted uses,
  unpublishes the listings concerned in the same transaction, and the
  catalogue index loses their rows at once;
- a recording that staff suspend or remove leaves the catalogue at once
  (``recording_set_status``); only staff review listings and change a
  recording's status, and every such decision is audited;
- an edit to a published listing keeps it published and applies to future
  sales only (licenses hold a copy of the terms); the revision goes up and
  the audit record keeps the terms before and after;
- locks are taken recordings first, then listings, so concurrent consent
  changes and reviews cannot deadlock.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from itertools import pairwise

from django.core.exceptions import ObjectDoesNotExist
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import PerformerProfile, User
from accounts.selectors import api_key_of
from core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from core.services import audit_record, client_ip
from marketplace.consent_texts import CURRENT_VERSION, TEXTS, text_sha256
from marketplace.models import (
    CatalogueEntry,
    ConsentEvent,
    ConsentRecord,
    ConsentText,
    EmotionalSignature,
    Listing,
    ListingItem,
    Provenance,
    Recording,
    RecordingSplit,
)
from marketplace.taxonomy import (
    FACS_ACTION_UNITS,
    Annotator,
    Authenticity,
    Emotion,
    SensitiveContent,
    Use,
    VocalEvent,
)

LISTING_MIN_DAYS = 30
LISTING_MAX_DAYS = 1095
TOTAL_BPS = 10_000


logger = logging.getLogger(__name__)


def _field_error(field: str, message: str, code: str = "validation_error") -> ValidationError:
    return ValidationError(f"{field}: {message}", code=code, details={"fields": {field: [message]}})


def _require_owner(recording: Recording, user: User) -> None:
    if recording.performer.user_id != user.pk:
        raise NotFound("No such recording.")


# --- Provenance ---------------------------------------------------------------


@transaction.atomic
def provenance_save(
    *,
    recording: Recording,
    by: User,
    performer_name: str,
    performer_contact: str,
    recording_date: date | None,
    session_name: str = "",
    studio: str = "",
    annotator: str = "",
    request: HttpRequest | None = None,
) -> Provenance:
    _require_owner(recording, by)
    values = {
        "performer_name": performer_name,
        "performer_contact": performer_contact,
        "session_name": session_name,
        "studio": studio,
        "annotator": annotator,
    }
    for field, value in values.items():
        if not isinstance(value, str):
            raise _field_error(field, "Must be text.")
        if len(value.strip()) > 200:
            raise _field_error(field, "At most 200 characters.")
    if recording_date is not None and not isinstance(recording_date, date):
        raise _field_error("recording_date", "Give the date as YYYY-MM-DD.")
    if recording_date is not None and recording_date > timezone.localdate():
        raise _field_error("recording_date", "The recording date cannot be in the future.")
    provenance, _ = Provenance.objects.select_for_update().get_or_create(recording=recording)
    provenance.performer_name = performer_name.strip()
    provenance.performer_contact = performer_contact.strip()
    provenance.recording_date = recording_date
    provenance.session_name = session_name.strip()
    provenance.studio = studio.strip()
    provenance.annotator = annotator.strip()
    provenance.save()
    audit_record(
        action="provenance.saved",
        actor=by,
        target=recording,
        request=request,
        api_key=api_key_of(request),
    )
    _refresh_listings_of(recording)
    _note_recording_edits(recording)
    return provenance


# --- Consent ------------------------------------------------------------------------


def consent_text_current() -> ConsentText:
    """The consent wording in force. Stored on first use, so the hash always
    matches the exact words shown."""
    body = TEXTS[CURRENT_VERSION]
    text, _ = ConsentText.objects.get_or_create(
        version=CURRENT_VERSION,
        defaults={
            "body": body,
            "sha256": text_sha256(body),
            "published_at": timezone.now(),
        },
    )
    return text


def _clean_choices(
    field: str, values: Iterable[str], allowed: type, *, required: bool
) -> list[str]:
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise _field_error(field, "Send a list of values.")
    values = list(dict.fromkeys(str(v).strip() for v in values if v is not None and str(v).strip()))
    unknown = [v for v in values if v not in allowed.values]
    if unknown:
        raise _field_error(field, f"Unknown value(s): {', '.join(unknown)}.", code="unknown_choice")
    if required and not values:
        raise _field_error(field, "Choose at least one.")
    return values


@transaction.atomic
def consent_give(
    *,
    recording: Recording,
    by: User,
    allowed_uses: Sequence[str],
    sensitive_content: Sequence[str],
    sensitive_content_licensable: bool,
    signature_name: str,
    consent_text_version: str,
    request: HttpRequest | None = None,
    ip_address: str | None = None,
    user_agent: str = "",
) -> ConsentRecord:
    """Record the performer's consent. A new consent supersedes the current
    one (e.g. to widen or narrow the allowed uses)."""
    _require_owner(recording, by)
    text = consent_text_current()
    if consent_text_version != text.version:
        raise _field_error(
            "consent_text_version",
            f"The consent text changed (now {text.version}). Read the current text and sign again.",
            code="consent_text_outdated",
        )
    uses = _clean_choices("allowed_uses", allowed_uses, Use, required=True)
    sensitive = _clean_choices(
        "sensitive_content", sensitive_content, SensitiveContent, required=False
    )
    if not isinstance(sensitive_content_licensable, bool):
        raise _field_error("sensitive_content_licensable", "Answer yes (true) or no (false).")
    if not isinstance(signature_name, str):
        raise _field_error("signature_name", "Type your full legal name to sign.")
    signature = " ".join(signature_name.split())
    legal_name = " ".join(recording.performer.legal_name.split())
    if not signature:
        raise _field_error("signature_name", "Type your full legal name to sign.")
    if signature.casefold() != legal_name.casefold():
        raise _field_error(
            "signature_name",
            f"The signature must be your full legal name as in your profile ({legal_name}).",
            code="signature_mismatch",
        )
    if Use.RESEARCH_ONLY in uses and len(uses) > 1:
        raise _field_error(
            "allowed_uses",
            "“Research only” cannot be combined with other uses.",
            code="conflicting_uses",
        )

    now = timezone.now()
    recording = Recording.objects.select_for_update().get(pk=recording.pk)
    current = ConsentRecord.objects.filter(recording=recording, superseded_at__isnull=True).first()
    if current is not None:
        current.superseded_at = now
        current.save(update_fields=["superseded_at"])
        ConsentEvent.objects.create(
            consent=current, kind=ConsentEvent.Kind.SUPERSEDED, at=now, actor=by
        )
    ip = ip_address or client_ip(request)
    consent = ConsentRecord.objects.create(
        recording=recording,
        consent_text=text,
        consent_text_sha256=text.sha256,
        allowed_uses=uses,
        sensitive_content=sensitive,
        sensitive_content_licensable=bool(sensitive_content_licensable),
        signature_name=signature,
        signed_by=by,
        signed_at=now,
        ip_address=ip,
        user_agent=(user_agent or (request.headers.get("User-Agent", "") if request else ""))[:400],
    )
    ConsentEvent.objects.create(
        consent=consent,
        kind=ConsentEvent.Kind.GIVEN,
        at=now,
        actor=by,
        ip_address=ip,
        data={"allowed_uses": uses, "sensitive_content": sensitive, "version": text.version},
    )
    audit_record(
        action="consent.given",
        actor=by,
        target=recording,
        request=request,
        api_key=api_key_of(request),
        data={"consent": consent.pk, "allowed_uses": uses, "version": text.version},
    )
    # A narrower consent takes the listings it no longer covers off sale at
    # once, as a withdrawal would (invariant 6); the others stay as they are.
    for listing in Listing.objects.select_for_update().filter(
        items__recording=recording, status__in=[Listing.Status.PUBLISHED, Listing.Status.IN_REVIEW]
    ):
        wider = sorted(set(listing.permitted_uses) - set(uses))
        blocked = bool(sensitive) and not consent.sensitive_content_licensable
        if wider or blocked:
            why = (
                f"the consent no longer covers {', '.join(Use(u).label for u in wider)}"
                if wider
                else "its sensitive content may no longer be licensed"
            )
            _listing_set_status(
                listing,
                Listing.Status.UNPUBLISHED,
                by=by,
                reason=f"Consent for {recording.uid} changed: {why}.",
                request=request,
            )
    _refresh_listings_of(recording)
    return consent


@transaction.atomic
def consent_withdraw(
    *, recording: Recording, by: User, reason: str = "", request: HttpRequest | None = None
) -> ConsentRecord:
    """Withdraw consent. New sales stop at once: every listing that offers the
    recording leaves the catalogue in this same transaction."""
    _require_owner(recording, by)
    recording = Recording.objects.select_for_update().get(pk=recording.pk)
    consent = ConsentRecord.objects.filter(recording=recording, superseded_at__isnull=True).first()
    if consent is None or consent.withdrawn_at is not None:
        raise Conflict("There is no active consent to withdraw.", code="no_active_consent")
    now = timezone.now()
    consent.withdrawn_at = now
    consent.withdrawal_reason = reason.strip()[:2000]
    consent.save(update_fields=["withdrawn_at", "withdrawal_reason"])
    ConsentEvent.objects.create(
        consent=consent,
        kind=ConsentEvent.Kind.WITHDRAWN,
        at=now,
        actor=by,
        ip_address=client_ip(request),
        data={"reason": consent.withdrawal_reason},
    )
    audit_record(
        action="consent.withdrawn",
        actor=by,
        target=recording,
        request=request,
        api_key=api_key_of(request),
    )
    for listing in Listing.objects.select_for_update().filter(
        items__recording=recording, status__in=[Listing.Status.PUBLISHED, Listing.Status.IN_REVIEW]
    ):
        _listing_set_status(
            listing,
            Listing.Status.UNPUBLISHED,
            by=by,
            reason=f"Consent for {recording.uid} was withdrawn.",
            request=request,
        )
    return consent


def consent_active(recording: Recording) -> ConsentRecord | None:
    return (
        ConsentRecord.objects.filter(
            recording=recording, superseded_at__isnull=True, withdrawn_at__isnull=True
        )
        .select_related("consent_text")
        .first()
    )


# --- Recording status (staff) --------------------------------------------------------


@transaction.atomic
def recording_set_status(
    *,
    recording: Recording,
    by: User,
    status: str,
    reason: str = "",
    request: HttpRequest | None = None,
) -> Recording:
    """Staff suspend, remove or reinstate a recording. Its listings' catalogue
    rows follow at once: a suspended recording's listings stay published but
    leave the catalogue until it is reinstated; a removed recording's
    listings are unpublished."""
    if not by.is_staff:
        raise PermissionDenied("Only staff change a recording's status.")
    if status not in Recording.Status.values:
        raise _field_error("status", f"Unknown status “{status}”.", code="unknown_choice")
    reason = (reason or "").strip()
    if status != Recording.Status.ACTIVE and not reason:
        raise _field_error("reason", "Say why, for the performer and the audit log.")
    recording = Recording.objects.select_for_update().get(pk=recording.pk)
    old = recording.status
    if old == status:
        return recording
    recording.status = status
    recording.save(update_fields=["status", "updated_at"])
    audit_record(
        action=f"recording.{status}",
        actor=by,
        target=recording,
        request=request,
        api_key=api_key_of(request),
        data={"from": old, "to": status, "reason": reason[:2000]},
    )
    if status == Recording.Status.REMOVED:
        for listing in Listing.objects.select_for_update().filter(
            items__recording=recording,
            status__in=[Listing.Status.PUBLISHED, Listing.Status.IN_REVIEW],
        ):
            _listing_set_status(
                listing,
                Listing.Status.UNPUBLISHED,
                by=by,
                reason=f"Staff removed {recording.uid}: {reason}",
                request=request,
            )
    _refresh_listings_of(recording)
    return recording


# --- Emotional signature ----------------------------------------------------------


@dataclass(frozen=True)
class ArcSegment:
    start: float
    end: float
    emotion: str
    intensity: int
    note: str = ""
    index: int = 0  # 1-based position as sent, to name it in errors

    def as_dict(self) -> dict:
        return {
            "start": self.start,
            "end": self.end,
            "emotion": self.emotion,
            "intensity": self.intensity,
            "note": self.note,
        }


def _arc_error(index: int, message: str, code: str = "validation_error") -> ValidationError:
    return ValidationError(
        f"arc: {message}",
        code=code,
        details={"fields": {"arc": [message]}, "segment": index},
    )


def _number(value: object) -> float:
    """A finite number (no NaN, no infinity, no booleans), or ValueError."""
    if isinstance(value, bool) or value is None:
        raise ValueError(value)
    number = float(str(value).strip()) if isinstance(value, str) else float(value)
    if not math.isfinite(number):
        raise ValueError(value)
    return number


def _whole(value: object) -> int:
    number = _number(value)
    if number != int(number):
        raise ValueError(value)
    return int(number)


def arc_clean(raw: object, *, duration_seconds: float) -> list[dict]:
    """Validate an arc: segments inside [0, duration], start < end, no overlap,
    known emotions, intensity 1–5. Returns the segments sorted by start.
    Errors name the segment by its position as sent (``details["segment"]``)."""
    if raw in (None, ""):
        return []
    if not isinstance(raw, list | tuple):
        raise _field_error("arc", "The arc must be a list of segments.")
    if len(raw) > 200:
        raise _field_error("arc", "An arc has at most 200 segments.")
    segments: list[ArcSegment] = []
    for index, item in enumerate(raw, start=1):
        where = f"Segment {index}"
        if not isinstance(item, dict):
            raise _arc_error(
                index, f"{where} must be an object with start, end, emotion, intensity."
            )
        try:
            start = _number(item.get("start"))
            end = _number(item.get("end"))
        except (TypeError, ValueError):
            raise _arc_error(index, f"{where}: start and end must be numbers of seconds.") from None
        try:
            intensity = _whole(item.get("intensity", 3))
        except (TypeError, ValueError):
            raise _arc_error(index, f"{where}: intensity must be a whole number 1 to 5.") from None
        emotion = str(item.get("emotion") or "").strip()
        if emotion not in Emotion.values:
            raise _arc_error(
                index, f"{where}: unknown emotion “{emotion}”.", code="unknown_emotion"
            )
        if not 1 <= intensity <= 5:
            raise _arc_error(index, f"{where}: intensity must be 1 to 5.")
        if start < 0 or end <= start:
            raise _arc_error(
                index,
                f"{where}: it must start at 0 s or later and end after it starts "
                f"({start:g}–{end:g} s).",
                code="arc_invalid_segment",
            )
        if end > duration_seconds + 1e-6:
            raise _arc_error(
                index,
                f"{where} ends at {end:g} s, after the recording ends ({duration_seconds:.2f} s).",
                code="arc_out_of_range",
            )
        note = item.get("note") or ""
        if not isinstance(note, str):
            raise _arc_error(index, f"{where}: the note must be text.")
        segments.append(ArcSegment(start, end, emotion, intensity, note.strip()[:500], index))
    segments.sort(key=lambda s: (s.start, s.end))
    for before, after in pairwise(segments):
        if after.start < before.end - 1e-9:
            raise _arc_error(
                after.index,
                f"Segment {after.index} ({after.start:g}–{after.end:g} s) overlaps "
                f"segment {before.index} ({before.start:g}–{before.end:g} s).",
                code="arc_overlap",
            )
    return [s.as_dict() for s in segments]


def _clean_tags(tags: Iterable[str]) -> list[str]:
    if isinstance(tags, str) or not isinstance(tags, Iterable):
        raise _field_error("tags", "Send the tags as a list of words.")
    cleaned = []
    for tag in tags:
        tag = " ".join(str(tag).split()).lower()[:40]
        if tag and tag not in cleaned:
            cleaned.append(tag)
    if len(cleaned) > 30:
        raise _field_error("tags", "At most 30 tags.")
    return cleaned


def _clean_action_units(action_units: Iterable[object]) -> list[int]:
    if isinstance(action_units, str) or not isinstance(action_units, Iterable):
        raise _field_error("action_units", "Send a list of FACS action units, e.g. [1, 4, 15].")
    units = set()
    for unit in action_units:
        text = str(unit).strip().upper().removeprefix("AU")
        if isinstance(unit, bool) or not text.isdigit():
            raise _field_error("action_units", f"“{unit}” is not a FACS action unit.")
        number = int(text)
        if number not in FACS_ACTION_UNITS:
            raise _field_error(
                "action_units",
                f"AU{number} is not a FACS action unit we record.",
                code="unknown_choice",
            )
        units.add(number)
    return sorted(units)


@transaction.atomic
def signature_save(
    *,
    recording: Recording,
    by: User,
    primary_emotion: str,
    intensity: int,
    valence: float,
    arousal: float,
    authenticity: str,
    arc: object = (),
    action_units: Sequence[int] = (),
    vocal_events: Sequence[str] = (),
    annotator: str = Annotator.SELF,
    description: str = "",
    tags: Sequence[str] = (),
    request: HttpRequest | None = None,
) -> EmotionalSignature:
    """Create or replace the recording's emotional signature. Every field is
    checked before anything is written, so a refused signature leaves the
    previous one exactly as it was."""
    _require_owner(recording, by)
    if primary_emotion not in Emotion.values:
        raise _field_error(
            "primary_emotion", f"Unknown emotion “{primary_emotion}”.", code="unknown_emotion"
        )
    if authenticity not in Authenticity.values:
        raise _field_error(
            "authenticity", f"Unknown authenticity “{authenticity}”.", code="unknown_choice"
        )
    if annotator not in Annotator.values:
        raise _field_error("annotator", f"Unknown annotator “{annotator}”.", code="unknown_choice")
    try:
        intensity = _whole(intensity)
    except (TypeError, ValueError):
        raise _field_error("intensity", "Intensity is a whole number from 1 to 5.") from None
    if not 1 <= intensity <= 5:
        raise _field_error("intensity", "Intensity must be 1 to 5.")
    try:
        valence = _number(valence)
    except (TypeError, ValueError):
        raise _field_error("valence", "Valence is a number from −1 to 1.") from None
    if not -1 <= valence <= 1:
        raise _field_error("valence", "Valence must be between −1 and 1.")
    try:
        arousal = _number(arousal)
    except (TypeError, ValueError):
        raise _field_error("arousal", "Arousal is a number from 0 to 1.") from None
    if not 0 <= arousal <= 1:
        raise _field_error("arousal", "Arousal must be between 0 and 1.")
    cleaned_arc = arc_clean(arc, duration_seconds=recording.duration_seconds)
    units = _clean_action_units(action_units)
    events = _clean_choices("vocal_events", vocal_events, VocalEvent, required=False)
    if not isinstance(description, str):
        raise _field_error("description", "The description must be text.")
    if len(description.strip()) > 2000:
        raise _field_error("description", "At most 2,000 characters.")
    cleaned_tags = _clean_tags(tags)

    values = {
        "primary_emotion": primary_emotion,
        "intensity": intensity,
        "valence": valence,
        "arousal": arousal,
        "authenticity": authenticity,
        "arc": cleaned_arc,
        "action_units": units,
        "vocal_events": events,
        "annotator": annotator,
        "description": description.strip(),
        "tags": cleaned_tags,
    }
    signature = EmotionalSignature.objects.select_for_update().filter(recording=recording).first()
    created = signature is None
    if created:
        signature = EmotionalSignature(recording=recording)
    for name, value in values.items():
        setattr(signature, name, value)
    signature.save()
    audit_record(
        action="signature.created" if created else "signature.updated",
        actor=by,
        target=recording,
        request=request,
        api_key=api_key_of(request),
        data={"primary_emotion": primary_emotion, "intensity": intensity},
    )
    _refresh_listings_of(recording)
    _note_recording_edits(recording)
    return signature


# --- Splits -------------------------------------------------------------------------


@transaction.atomic
def splits_set(
    *,
    recording: Recording,
    by: User,
    shares: Sequence[tuple[PerformerProfile, int]],
    request: HttpRequest | None = None,
) -> list[RecordingSplit]:
    """Replace the recording's splits. Basis points must sum to exactly 10,000.

    Error codes: ``splits_empty``, ``duplicate_performer``, ``invalid_share``
    (not a whole number from 1 to 10,000), ``splits_not_100_percent``, and
    409 ``recording_listed`` while a published listing offers the recording."""
    _require_owner(recording, by)
    if not shares:
        raise _field_error(
            "splits", "At least one performer must share the recording.", code="splits_empty"
        )
    seen = set()
    total = 0
    for performer, bps in shares:
        if performer.pk in seen:
            raise _field_error(
                "splits", f"{performer.stage_name} appears twice.", code="duplicate_performer"
            )
        seen.add(performer.pk)
        if not isinstance(bps, int) or isinstance(bps, bool) or not 1 <= bps <= TOTAL_BPS:
            raise _field_error(
                "splits",
                "Each share is a whole number of basis points from 1 to 10,000.",
                code="invalid_share",
            )
        total += bps
    if total != TOTAL_BPS:
        raise _field_error(
            "splits",
            f"Shares add up to {total} basis points; they must add up to exactly 10,000 (100%).",
            code="splits_not_100_percent",
        )
    if Listing.objects.filter(items__recording=recording, status=Listing.Status.PUBLISHED).exists():
        raise Conflict(
            "Unpublish the listings that offer this recording before changing its splits.",
            code="recording_listed",
        )
    RecordingSplit.objects.filter(recording=recording).delete()
    splits = [
        RecordingSplit.objects.create(recording=recording, performer=p, share_bps=b)
        for p, b in shares
    ]
    audit_record(
        action="splits.set",
        actor=by,
        target=recording,
        request=request,
        api_key=api_key_of(request),
        data={"splits": {str(p.pk): b for p, b in shares}},
    )
    return splits


# --- Listings ---------------------------------------------------------------------------


@dataclass
class ListingTerms:
    title: str
    description: str = ""
    duration_days: int = 730
    permitted_uses: Sequence[str] = ()
    worldwide: bool = True
    territories: Sequence[str] = ()
    sublicensing_allowed: bool = False
    attribution_required: bool = False
    price_minor: int = 0
    currency: str = "USD"
    revenue_share_bps: int = 2000
    revenue_threshold_minor: int = 1_000_000
    per_unit_rates: dict | None = None
    reuse_caps: dict | None = None


SUPPORTED_CURRENCIES = {"USD", "EUR", "GBP", "CAD", "AUD"}
REUSE_CAP_KEYS = {"max_models_trained", "max_fine_tunes", "max_deployments"}


def _clean_terms(terms: ListingTerms) -> dict:
    from django_countries import countries

    from marketplace.taxonomy import Metric

    if not isinstance(terms.title, str):
        raise _field_error("title", "Give the listing a title.")
    title = " ".join(terms.title.split())
    if not title:
        raise _field_error("title", "Give the listing a title.")
    if len(title) > 200:
        raise _field_error("title", "At most 200 characters.")
    description = terms.description if terms.description is not None else ""
    if not isinstance(description, str):
        raise _field_error("description", "The description must be text.")
    if len(description.strip()) > 5000:
        raise _field_error("description", "At most 5,000 characters.")
    try:
        duration = _whole(terms.duration_days)
    except (TypeError, ValueError):
        raise _field_error(
            "duration_days", "The license duration is a whole number of days."
        ) from None
    if not LISTING_MIN_DAYS <= duration <= LISTING_MAX_DAYS:
        raise _field_error(
            "duration_days",
            f"Licenses last {LISTING_MIN_DAYS} to {LISTING_MAX_DAYS} days; "
            "there is no perpetual license.",
            code="duration_out_of_range",
        )
    uses = _clean_choices("permitted_uses", terms.permitted_uses, Use, required=True)
    for field in ("worldwide", "sublicensing_allowed", "attribution_required"):
        if not isinstance(getattr(terms, field), bool):
            raise _field_error(field, "Answer yes (true) or no (false).")
    territories: list[str] = []
    if not terms.worldwide:
        if isinstance(terms.territories, str) or not isinstance(terms.territories, Iterable):
            raise _field_error("territories", "Send a list of ISO 3166 country codes.")
        for code in terms.territories:
            code = str(code).strip().upper()
            if code not in dict(countries):
                raise _field_error("territories", f"“{code}” is not an ISO 3166 country code.")
            if code not in territories:
                territories.append(code)
        if not territories:
            raise _field_error("territories", "Choose worldwide or at least one country.")
    currency = str(terms.currency).upper()
    if currency not in SUPPORTED_CURRENCIES:
        raise _field_error(
            "currency", f"Prices can be in {', '.join(sorted(SUPPORTED_CURRENCIES))}."
        )
    for field, value, low, high in [
        ("price_minor", terms.price_minor, 0, 10**11),
        ("revenue_share_bps", terms.revenue_share_bps, 0, TOTAL_BPS),
        ("revenue_threshold_minor", terms.revenue_threshold_minor, 0, 10**13),
    ]:
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise _field_error(field, f"Must be a whole number from {low} to {high:,}.")
    if terms.price_minor < 100:
        raise _field_error("price_minor", "The price must be at least 1.00.")
    raw_rates = terms.per_unit_rates or {}
    if not isinstance(raw_rates, dict):
        raise _field_error("per_unit_rates", "Send an object of {metric: {amount_minor, per}}.")
    rates = {}
    for metric, rate in raw_rates.items():
        if metric not in Metric.values or metric == Metric.DOWNSTREAM_REVENUE:
            raise _field_error(
                "per_unit_rates", f"“{metric}” is not a metric with a per-unit rate."
            )
        if not isinstance(rate, dict):
            raise _field_error(
                "per_unit_rates", f"The rate for {metric} needs amount_minor and per."
            )
        amount, per = rate.get("amount_minor"), rate.get("per", 1)
        if (
            not _is_whole(amount)
            or amount < 0
            or amount > 10**11
            or not _is_whole(per)
            or not 1 <= per <= 10**9
        ):
            raise _field_error(
                "per_unit_rates",
                f"The rate for {metric} is a whole amount_minor ≥ 0 per a whole number ≥ 1.",
            )
        if amount:
            rates[metric] = {"amount_minor": amount, "per": per}
    raw_caps = terms.reuse_caps or {}
    if not isinstance(raw_caps, dict):
        raise _field_error("reuse_caps", "Send an object of {cap: number}.")
    caps = {}
    for key, value in raw_caps.items():
        if key not in REUSE_CAP_KEYS:
            raise _field_error("reuse_caps", f"Unknown cap “{key}”.")
        if value in (None, ""):
            continue
        if not _is_whole(value) or not 1 <= value <= 10**6:
            raise _field_error("reuse_caps", f"{key} must be a whole number of at least 1.")
        caps[key] = value
    return {
        "title": title,
        "description": description.strip(),
        "duration_days": duration,
        "permitted_uses": uses,
        "worldwide": terms.worldwide,
        "territories": territories,
        "sublicensing_allowed": terms.sublicensing_allowed,
        "attribution_required": terms.attribution_required,
        "price_minor": terms.price_minor,
        "currency": currency,
        "revenue_share_bps": terms.revenue_share_bps,
        "revenue_threshold_minor": terms.revenue_threshold_minor,
        "per_unit_rates": rates,
        "reuse_caps": caps,
    }


def _is_whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def listing_problems(listing: Listing, recordings: Sequence[Recording] | None = None) -> list[str]:
    """Why the listing cannot be offered as it stands (empty when it can).
    Recordings loaded through ``marketplace.selectors.with_readiness`` are
    checked without further queries."""
    from marketplace.selectors import recording_facts, with_readiness

    problems: list[str] = []
    if recordings is None:
        recordings = list(
            with_readiness(Recording.objects.filter(listing_items__listing=listing)).order_by(
                "listing_items__position", "listing_items__id"
            )
        )
    if not recordings:
        problems.append("The listing offers no recordings.")
    for recording in recordings:
        label = f"{recording.uid} “{recording.title}”"
        facts = recording_facts(recording)
        if recording.status != Recording.Status.ACTIVE:
            problems.append(f"{label} is {recording.get_status_display().lower()}.")
        if facts.provenance_missing:
            problems.append(
                f"{label} is missing provenance: {', '.join(facts.provenance_missing)}."
            )
        consent = facts.active_consent
        if consent is None:
            problems.append(f"{label} has no active consent.")
        else:
            wider = sorted(set(listing.permitted_uses) - set(consent.allowed_uses))
            if wider:
                labels = ", ".join(Use(u).label for u in wider)
                problems.append(f"{label}: the performer did not consent to {labels}.")
            if facts.sensitive_blocked:
                problems.append(
                    f"{label} holds sensitive content the performer did not agree to license."
                )
        if not facts.has_signature:
            problems.append(f"{label} has no emotional signature.")
        if facts.splits_total_bps != TOTAL_BPS:
            problems.append(
                f"{label}: splits add up to {facts.splits_total_bps} basis points, not 10,000."
            )
    return problems


def _validate_recordings_for(
    performer: PerformerProfile, recording_ids: Sequence[int]
) -> list[Recording]:
    ids = list(dict.fromkeys(recording_ids))
    if not ids:
        raise _field_error("recordings", "Choose at least one recording.")
    if len(ids) > 500:
        raise _field_error("recordings", "A pack holds at most 500 recordings.")
    recordings = list(
        Recording.objects.filter(pk__in=ids, performer=performer).select_related("performer")
    )
    if len(recordings) != len(ids):
        raise _field_error(
            "recordings", "Some of these recordings are not yours.", code="not_found"
        )
    by_id = {r.pk: r for r in recordings}
    return [by_id[i] for i in ids]


def _check_uses_within_consent(
    permitted_uses: Sequence[str], recordings: Sequence[Recording]
) -> None:
    for recording in recordings:
        consent = consent_active(recording)
        allowed = set(consent.allowed_uses) if consent else set()
        wider = sorted(set(permitted_uses) - allowed)
        if wider:
            raise _field_error(
                "permitted_uses",
                f"{recording.uid}: permitted uses exceed the performer's consent "
                f"({', '.join(Use(u).label for u in wider)} not consented).",
                code="uses_exceed_consent",
            )


@transaction.atomic
def listing_create(
    *,
    performer: PerformerProfile,
    by: User,
    recording_ids: Sequence[int],
    terms: ListingTerms,
    request: HttpRequest | None = None,
) -> Listing:
    if performer.user_id != by.pk:
        raise PermissionDenied("You can only list your own recordings.")
    values = _clean_terms(terms)
    recordings = _validate_recordings_for(performer, recording_ids)
    _check_uses_within_consent(values["permitted_uses"], recordings)
    listing = Listing.objects.create(performer=performer, **values)
    ListingItem.objects.bulk_create(
        [ListingItem(listing=listing, recording=r, position=i) for i, r in enumerate(recordings)]
    )
    audit_record(
        action="listing.created",
        actor=by,
        target=listing,
        request=request,
        api_key=api_key_of(request),
        data={"recordings": [r.uid for r in recordings], "terms": values},
    )
    return listing


@transaction.atomic
def listing_update(
    *,
    listing: Listing,
    by: User,
    terms: ListingTerms,
    recording_ids: Sequence[int] | None = None,
    request: HttpRequest | None = None,
) -> Listing:
    """Edit a listing. Licenses already sold keep the terms they were sold
    under (they hold a copy); a published listing stays published and the new
    terms apply to future sales. Changing the recordings of a published
    listing sends it back to review."""
    listing = Listing.objects.select_for_update().get(pk=listing.pk)
    if listing.performer.user_id != by.pk:
        raise NotFound("No such listing.")
    before = _clean_terms_snapshot(listing)
    values = _clean_terms(terms)
    recordings = (
        _validate_recordings_for(listing.performer, recording_ids)
        if recording_ids is not None
        else list(listing.recordings.all())
    )
    _check_uses_within_consent(values["permitted_uses"], recordings)
    for name, value in values.items():
        setattr(listing, name, value)
    listing.revision += 1
    recordings_changed = recording_ids is not None and [r.pk for r in recordings] != list(
        listing.items.values_list("recording_id", flat=True)
    )
    if recordings_changed:
        listing.items.all().delete()
        ListingItem.objects.bulk_create(
            [
                ListingItem(listing=listing, recording=r, position=i)
                for i, r in enumerate(recordings)
            ]
        )
    listing.save()
    if recordings_changed and listing.status == Listing.Status.PUBLISHED:
        _listing_set_status(
            listing, Listing.Status.IN_REVIEW, by=by, reason="Recordings changed.", request=request
        )
    if listing.status == Listing.Status.PUBLISHED and _terms_as_reviewed(listing):
        # Edited back to exactly what staff approved: nothing for them to see.
        listing.reviewed_revision = listing.revision
        listing.save(update_fields=["reviewed_revision"])
    audit_record(
        action="listing.updated",
        actor=by,
        target=listing,
        request=request,
        api_key=api_key_of(request),
        data={"before": before, "after": values, "revision": listing.revision},
    )
    catalogue_refresh_listing(listing)
    return listing


def _terms_as_reviewed(listing: Listing) -> bool:
    # Compared as stored JSON, the form reviewed_terms comes back in.
    return listing.reviewed_terms == json.loads(json.dumps(_clean_terms_snapshot(listing)))


def _clean_terms_snapshot(listing: Listing) -> dict:
    return {name: getattr(listing, name) for name in Listing.TERM_FIELDS}


def recording_review_snapshot(recording: Recording) -> dict:
    """What staff see of a recording when they approve a listing of it, and
    compare later: a performer may still edit these on a listed recording
    (the listing stays on sale), so staff are shown the difference.

    The recording's signature and provenance as plain JSON values, keyed
    ``signature.<field>`` and ``provenance.<field>`` (absent parts are left
    out). Reads ``recording.signature`` and ``recording.provenance``, so
    select or prefetch them."""
    snapshot: dict = {}
    parts = (("signature", EmotionalSignature.FIELDS), ("provenance", Provenance.FIELDS))
    for part, fields in parts:
        try:
            obj = getattr(recording, part)
        except ObjectDoesNotExist:
            continue
        for name in fields:
            value = getattr(obj, name)
            snapshot[f"{part}.{name}"] = value.isoformat() if isinstance(value, date) else value
    return json.loads(json.dumps(snapshot))


def _recordings_reviewed(listing: Listing) -> dict[str, dict]:
    recordings = Recording.objects.filter(listing_items__listing=listing).select_related(
        "signature", "provenance"
    )
    return {r.uid: recording_review_snapshot(r) for r in recordings}


def _note_recording_edits(recording: Recording) -> None:
    """After a listed recording's signature or provenance was saved: flag the
    published listings offering it whose recordings no longer read as staff
    approved them, and unflag those edited back to it."""
    for listing in (
        Listing.objects.select_for_update()
        .filter(items__recording=recording, status=Listing.Status.PUBLISHED)
        .filter(reviewed_recordings__isnull=False)
        .order_by("pk")
    ):
        changed = _recordings_reviewed(listing) != listing.reviewed_recordings
        if changed != listing.recordings_changed:
            listing.recordings_changed = changed
            listing.save(update_fields=["recordings_changed"])


def _listing_set_status(
    listing: Listing,
    status: str,
    *,
    by: User | None,
    reason: str = "",
    request: HttpRequest | None = None,
) -> None:
    old = listing.status
    listing.status = status
    now = timezone.now()
    fields = ["status", "updated_at"]
    if status == Listing.Status.IN_REVIEW:
        listing.submitted_at = now
        listing.rejection_reason = ""
        fields += ["submitted_at", "rejection_reason"]
    elif status in (Listing.Status.PUBLISHED, Listing.Status.REJECTED):
        listing.reviewed_at = now
        listing.reviewed_by = by
        fields += ["reviewed_at", "reviewed_by"]
        if status == Listing.Status.PUBLISHED:
            listing.published_at = now
            listing.reviewed_revision = listing.revision
            listing.reviewed_terms = _clean_terms_snapshot(listing)
            listing.reviewed_recordings = _recordings_reviewed(listing)
            listing.recordings_changed = False
            fields += [
                "published_at",
                "reviewed_revision",
                "reviewed_terms",
                "reviewed_recordings",
                "recordings_changed",
            ]
        else:
            listing.rejection_reason = reason
            fields.append("rejection_reason")
    elif status == Listing.Status.UNPUBLISHED:
        # Shown to the performer: why the listing left the catalogue (empty
        # when they unpublished it themselves).
        listing.rejection_reason = reason
        fields.append("rejection_reason")
    listing.save(update_fields=fields)
    event = audit_record(
        action=f"listing.{status}",
        actor=by,
        target=listing,
        request=request,
        api_key=api_key_of(request),
        data={"from": old, "to": status, "reason": reason},
    )
    catalogue_refresh_listing(listing)
    decided_by_staff = by is not None and by.pk != listing.performer.user_id
    if decided_by_staff and status in _DECISIONS_TOLD:
        transaction.on_commit(lambda: _tell_performer(event.pk))


# Staff decisions the performer is emailed about (marketplace.notifications).
_DECISIONS_TOLD = {Listing.Status.PUBLISHED, Listing.Status.REJECTED, Listing.Status.UNPUBLISHED}


def _tell_performer(audit_event_id: int) -> None:
    from marketplace.tasks import listing_decision_notify_task

    try:
        listing_decision_notify_task.delay(audit_event_id)
    except Exception:
        # The decision stands and the performer sees it on their pages; a
        # broker outage only loses the email.
        logger.exception("Could not enqueue the email for audit event %s", audit_event_id)


_TRANSITIONS = {
    "submit": (
        {Listing.Status.DRAFT, Listing.Status.REJECTED, Listing.Status.UNPUBLISHED},
        Listing.Status.IN_REVIEW,
    ),
    "approve": ({Listing.Status.IN_REVIEW}, Listing.Status.PUBLISHED),
    "reject": ({Listing.Status.IN_REVIEW}, Listing.Status.REJECTED),
    "unpublish": ({Listing.Status.PUBLISHED, Listing.Status.IN_REVIEW}, Listing.Status.UNPUBLISHED),
}


_PAST = {
    "submit": "submitted",
    "approve": "approved",
    "reject": "rejected",
    "unpublish": "unpublished",
}


def _transition(listing: Listing, action: str) -> str:
    allowed_from, to = _TRANSITIONS[action]
    if listing.status not in allowed_from:
        state = listing.get_status_display().lower()
        raise Conflict(
            f"A listing that is {state} cannot be {_PAST[action]}.",
            code="invalid_listing_transition",
        )
    return to


def _lock_recordings_of(listing: Listing) -> None:
    """Lock the listing's recordings so that a consent change cannot slip
    between the readiness check and the status change. Lock order is always
    recordings (by id) before listings, as in consent_give and
    consent_withdraw, so the two cannot deadlock."""
    list(
        Recording.objects.select_for_update()
        .filter(listing_items__listing=listing)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


@transaction.atomic
def listing_submit(*, listing: Listing, by: User, request: HttpRequest | None = None) -> Listing:
    _lock_recordings_of(listing)
    listing = Listing.objects.select_for_update().select_related("performer").get(pk=listing.pk)
    if listing.performer.user_id != by.pk:
        raise NotFound("No such listing.")
    to = _transition(listing, "submit")
    problems = listing_problems(listing)
    if problems:
        raise ValidationError(
            "The listing cannot go to review yet: " + " ".join(problems),
            code="listing_not_ready",
            details={"problems": problems},
        )
    _listing_set_status(listing, to, by=by, request=request)
    return listing


@transaction.atomic
def listing_review(
    *,
    listing: Listing,
    by: User,
    approve: bool,
    reason: str = "",
    request: HttpRequest | None = None,
) -> Listing:
    """Staff approve (publish) or reject, with a reason the performer sees."""
    if not by.is_staff:
        raise PermissionDenied("Only staff review listings.")
    if approve:
        _lock_recordings_of(listing)
    listing = Listing.objects.select_for_update().get(pk=listing.pk)
    to = _transition(listing, "approve" if approve else "reject")
    if approve:
        problems = listing_problems(listing)
        if problems:
            raise ValidationError(
                "The listing cannot be published: " + " ".join(problems),
                code="listing_not_ready",
                details={"problems": problems},
            )
    elif not reason.strip():
        raise _field_error("reason", "Tell the performer what to change.")
    _listing_set_status(listing, to, by=by, reason=reason.strip(), request=request)
    return listing


@transaction.atomic
def listing_unpublish(
    *, listing: Listing, by: User, reason: str = "", request: HttpRequest | None = None
) -> Listing:
    """The performer takes their listing off sale, or staff do, saying why
    (the performer sees the reason). Licenses already sold are unaffected."""
    listing = Listing.objects.select_for_update().select_related("performer").get(pk=listing.pk)
    own = listing.performer.user_id == by.pk
    if not own and not by.is_staff:
        raise NotFound("No such listing.")
    to = _transition(listing, "unpublish")
    if not own and not reason.strip():
        raise _field_error("reason", "Tell the performer why the listing leaves the catalogue.")
    _listing_set_status(listing, to, by=by, reason=reason.strip(), request=request)
    return listing


@transaction.atomic
def listing_changes_acknowledge(
    *, listing: Listing, by: User, request: HttpRequest | None = None
) -> Listing:
    """Staff have looked at the edits made to a published listing since it
    was approved and let them stand: what it offers now becomes what staff
    reviewed. Audited with the fields that had changed."""
    if not by.is_staff:
        raise PermissionDenied("Only staff review listings.")
    listing = Listing.objects.select_for_update().get(pk=listing.pk)
    if listing.status != Listing.Status.PUBLISHED:
        raise Conflict(
            "Only a published listing's edits are looked at here.",
            code="invalid_listing_transition",
        )
    terms = _clean_terms_snapshot(listing)
    changed = sorted(
        name for name, value in terms.items() if (listing.reviewed_terms or {}).get(name) != value
    )
    recordings = _recordings_reviewed(listing)
    seen = listing.reviewed_recordings or {}
    changed += sorted(uid for uid, snapshot in recordings.items() if seen.get(uid) != snapshot)
    pending = listing.reviewed_revision != listing.revision or listing.recordings_changed
    if not pending and not changed:
        return listing  # already looked at (a second click): nothing to record
    listing.reviewed_revision = listing.revision
    listing.reviewed_terms = terms
    listing.reviewed_recordings = recordings
    listing.recordings_changed = False
    listing.save(
        update_fields=[
            "reviewed_revision",
            "reviewed_terms",
            "reviewed_recordings",
            "recordings_changed",
            "updated_at",
        ]
    )
    audit_record(
        action="listing.changes_reviewed",
        actor=by,
        target=listing,
        request=request,
        data={"revision": listing.revision, "fields": changed},
    )
    return listing


def listing_is_for_sale(listing: Listing) -> bool:
    """Checked again at checkout: published, and every recording still sellable."""
    return listing.status == Listing.Status.PUBLISHED and not listing_problems(listing)


# --- The catalogue index ----------------------------------------------------------------


def _search_document(listing: Listing, recording: Recording, signature: EmotionalSignature) -> str:
    parts = [
        listing.title,
        listing.description,
        recording.title,
        signature.description,
        " ".join(signature.tags),
        Emotion(signature.primary_emotion).label,
        Authenticity(signature.authenticity).label,
        " ".join(
            Emotion(s["emotion"]).label for s in signature.arc if s.get("emotion") in Emotion.values
        ),
        " ".join(signature.vocal_events),
        recording.performer.stage_name,
        recording.language,
    ]
    return " ".join(p for p in parts if p)


def catalogue_refresh_listing(listing: Listing) -> int:
    """Rebuild the listing's catalogue rows: none unless it is published and
    every recording is sellable. Returns the number of rows."""
    with transaction.atomic():
        CatalogueEntry.objects.filter(listing=listing).delete()
        if listing.status != Listing.Status.PUBLISHED:
            return 0
        from marketplace.selectors import with_readiness

        recordings = list(
            with_readiness(Recording.objects.filter(listing_items__listing=listing)).order_by(
                "listing_items__position", "listing_items__id"
            )
        )
        if listing_problems(listing, recordings):
            return 0
        uses = set(listing.permitted_uses)
        territories = "|" + "|".join(listing.territories) + "|" if not listing.worldwide else ""
        entries = [
            CatalogueEntry(
                listing=listing,
                recording=r,
                performer_id=r.performer_id,
                primary_emotion=r.signature.primary_emotion,
                intensity=r.signature.intensity,
                valence=r.signature.valence,
                arousal=r.signature.arousal,
                authenticity=r.signature.authenticity,
                language=r.language.lower(),
                media_kind=r.media_kind,
                duration_seconds=r.duration_seconds,
                price_minor=listing.price_minor,
                currency=listing.currency,
                use_model_training=Use.MODEL_TRAINING in uses,
                use_evaluation=Use.EVALUATION in uses,
                use_fine_tuning=Use.FINE_TUNING in uses,
                use_synthetic_generation=Use.SYNTHETIC_GENERATION in uses,
                use_commercial_deployment=Use.COMMERCIAL_DEPLOYMENT in uses,
                use_research_only=Use.RESEARCH_ONLY in uses,
                worldwide=listing.worldwide,
                territories=territories,
                search_document=_search_document(listing, r, r.signature),
                published_at=listing.published_at or timezone.now(),
            )
            for r in recordings
        ]
        CatalogueEntry.objects.bulk_create(entries)
        return len(entries)


def _refresh_listings_of(recording: Recording) -> None:
    for listing in Listing.objects.filter(
        Q(items__recording=recording), status=Listing.Status.PUBLISHED
    ).distinct():
        catalogue_refresh_listing(listing)
