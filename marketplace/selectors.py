"""Reads for the catalogue's performer side and staff review, and every rule
about who may see a recording or a listing.

A recording's *state* ("missing provenance", "ready to list", "listed" …) is
derived, never stored: ``recording_state`` works it out from the facts that
travel with the recording (provenance, current consent, signature, splits,
listings). Lists load those facts in a fixed number of queries through
``with_readiness``; a single recording loaded any other way still works, at
the cost of a few queries.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import (
    Count,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import Coalesce
from django.http import Http404

from accounts.models import PerformerProfile, User
from marketplace.models import (
    ConsentRecord,
    Listing,
    ListingItem,
    Provenance,
    Recording,
    RecordingSplit,
)
from marketplace.taxonomy import Authenticity, Emotion, Use

TOTAL_BPS = 10_000
PROVENANCE_LABELS = {
    "performer_name": "performer name",
    "performer_contact": "contact",
    "recording_date": "recording date",
}

# --- Readiness facts ------------------------------------------------------------


def with_readiness(queryset: QuerySet[Recording]) -> QuerySet[Recording]:
    """Recordings with everything ``recording_state`` and ``listing_problems``
    need, in two queries however many rows: provenance and signature joined,
    the current consent prefetched, splits and listing membership annotated."""
    splits_total = (
        RecordingSplit.objects.filter(recording=OuterRef("pk"))
        .values("recording")
        .annotate(total=Sum("share_bps"))
        .values("total")
    )
    return (
        queryset.select_related("performer", "provenance", "signature")
        .annotate(
            splits_total_bps=Coalesce(Subquery(splits_total, output_field=IntegerField()), 0),
            in_published_listing=Exists(
                ListingItem.objects.filter(
                    recording=OuterRef("pk"), listing__status=Listing.Status.PUBLISHED
                )
            ),
            in_review_listing=Exists(
                ListingItem.objects.filter(
                    recording=OuterRef("pk"), listing__status=Listing.Status.IN_REVIEW
                )
            ),
        )
        .prefetch_related(
            Prefetch(
                "consents",
                queryset=ConsentRecord.objects.filter(superseded_at__isnull=True).select_related(
                    "consent_text"
                ),
                to_attr="current_consents",
            )
        )
    )


@dataclass(frozen=True)
class RecordingFacts:
    provenance: Provenance | None
    provenance_missing: list[str]
    consent: ConsentRecord | None  # the current record; it may be withdrawn
    has_signature: bool
    splits_total_bps: int
    in_published_listing: bool
    in_review_listing: bool

    @property
    def active_consent(self) -> ConsentRecord | None:
        if self.consent is not None and self.consent.withdrawn_at is None:
            return self.consent
        return None

    @property
    def sensitive_blocked(self) -> bool:
        consent = self.active_consent
        return bool(
            consent and consent.sensitive_content and not consent.sensitive_content_licensable
        )


def _one_to_one(recording: Recording, name: str):
    try:
        return getattr(recording, name)
    except ObjectDoesNotExist:
        return None


def recording_facts(recording: Recording) -> RecordingFacts:
    """What decides whether the recording can be sold. Uses what
    ``with_readiness`` loaded, and queries for whatever it did not."""
    provenance = _one_to_one(recording, "provenance")
    missing = provenance.missing_fields() if provenance is not None else list(PROVENANCE_LABELS)
    if hasattr(recording, "current_consents"):
        consent = recording.current_consents[0] if recording.current_consents else None
    else:
        consent = (
            ConsentRecord.objects.filter(recording=recording, superseded_at__isnull=True)
            .select_related("consent_text")
            .first()
        )
    has_signature = _one_to_one(recording, "signature") is not None
    if hasattr(recording, "splits_total_bps"):
        splits_total = recording.splits_total_bps or 0
    else:
        splits_total = (
            RecordingSplit.objects.filter(recording=recording).aggregate(t=Sum("share_bps"))["t"]
            or 0
        )
    if hasattr(recording, "in_published_listing"):
        published, in_review = recording.in_published_listing, recording.in_review_listing
    else:
        statuses = set(
            ListingItem.objects.filter(recording=recording).values_list(
                "listing__status", flat=True
            )
        )
        published = Listing.Status.PUBLISHED in statuses
        in_review = Listing.Status.IN_REVIEW in statuses
    return RecordingFacts(
        provenance=provenance,
        provenance_missing=missing,
        consent=consent,
        has_signature=has_signature,
        splits_total_bps=splits_total,
        in_published_listing=published,
        in_review_listing=in_review,
    )


# --- Recording state ---------------------------------------------------------------


class RecordingState(NamedTuple):
    """``code, label, next_step = recording_state(recording)``."""

    code: str
    label: str
    next_step: str

    @property
    def tone(self) -> str:
        """The badge class the state is shown with."""
        return STATE_TONES.get(self.code, "neutral")

    @property
    def needs_attention(self) -> bool:
        return self.code in ATTENTION_STATES

    @property
    def is_listable(self) -> bool:
        return self.code in LISTABLE_STATES


STATE_TONES = {
    "removed": "danger",
    "suspended": "danger",
    "consent_withdrawn": "neutral",
    "draft": "neutral",
    "missing_provenance": "warning",
    "needs_consent": "warning",
    "sensitive_not_licensable": "warning",
    "needs_signature": "warning",
    "splits_incomplete": "warning",
    "ready": "info",
    "in_review": "pending",
    "listed": "success",
}
STATE_LABELS = {
    "draft": "Draft",
    "missing_provenance": "Missing provenance",
    "needs_consent": "Needs consent",
    "sensitive_not_licensable": "Sensitive content not licensable",
    "needs_signature": "Needs signature",
    "splits_incomplete": "Splits incomplete",
    "ready": "Ready to list",
    "in_review": "In review",
    "listed": "Listed",
    "consent_withdrawn": "Consent withdrawn",
    "suspended": "Suspended",
    "removed": "Removed",
}
# States that ask something of the performer.
ATTENTION_STATES = {
    "draft",
    "missing_provenance",
    "needs_consent",
    "sensitive_not_licensable",
    "needs_signature",
    "splits_incomplete",
    "suspended",
}
# States in which a recording may go into a listing.
LISTABLE_STATES = {"ready", "in_review", "listed"}
# States that imply an active consent.
CONSENTED_STATES = {
    "sensitive_not_licensable",
    "needs_signature",
    "splits_incomplete",
    *LISTABLE_STATES,
}


def recording_state(recording: Recording, facts: RecordingFacts | None = None) -> RecordingState:
    """Where the recording stands and what the performer should do next,
    checked in the order the work is usually done."""
    if recording.status == Recording.Status.REMOVED:
        return RecordingState(
            "removed",
            STATE_LABELS["removed"],
            "Staff removed this recording; it cannot be sold. Contact support if this is a "
            "mistake.",
        )
    if recording.status == Recording.Status.SUSPENDED:
        return RecordingState(
            "suspended",
            STATE_LABELS["suspended"],
            "Staff suspended this recording while a request about it is reviewed. It is not "
            "for sale meanwhile.",
        )
    facts = facts or recording_facts(recording)
    consent = facts.consent
    if consent is not None and consent.withdrawn_at is not None:
        return RecordingState(
            "consent_withdrawn",
            STATE_LABELS["consent_withdrawn"],
            "Not for sale. Give consent again if you want to offer it.",
        )
    if consent is None and not facts.has_signature and facts.provenance_missing:
        return RecordingState(
            "draft",
            STATE_LABELS["draft"],
            "Complete its provenance, record your consent and describe its emotional signature.",
        )
    if facts.provenance_missing:
        missing = ", ".join(PROVENANCE_LABELS.get(f, f) for f in facts.provenance_missing)
        return RecordingState(
            "missing_provenance", STATE_LABELS["missing_provenance"], f"Add the {missing}."
        )
    if consent is None:
        return RecordingState(
            "needs_consent",
            STATE_LABELS["needs_consent"],
            "Read the consent text and choose the uses you agree to.",
        )
    if facts.sensitive_blocked:
        return RecordingState(
            "sensitive_not_licensable",
            STATE_LABELS["sensitive_not_licensable"],
            "It holds sensitive content you did not agree to license, so it cannot be offered. "
            "Sign a new consent if you want to license it.",
        )
    if not facts.has_signature:
        return RecordingState(
            "needs_signature",
            STATE_LABELS["needs_signature"],
            "Describe its emotional signature: emotion, intensity, arc.",
        )
    if facts.splits_total_bps != TOTAL_BPS:
        return RecordingState(
            "splits_incomplete",
            STATE_LABELS["splits_incomplete"],
            f"Splits add up to {bps_label(facts.splits_total_bps)}; make them add up to 100%.",
        )
    if facts.in_published_listing:
        return RecordingState("listed", STATE_LABELS["listed"], "For sale in the catalogue.")
    if facts.in_review_listing:
        return RecordingState(
            "in_review", STATE_LABELS["in_review"], "Staff are reviewing a listing that offers it."
        )
    return RecordingState("ready", STATE_LABELS["ready"], "Put it in a listing to offer it.")


# --- Who may see what ------------------------------------------------------------------


def performer_for(user: User) -> PerformerProfile | None:
    if not user.is_authenticated:
        return None
    return PerformerProfile.objects.filter(user=user).first()


def recording_for_owner(*, user: User, uid: str) -> Recording:
    """The user's own recording. Anyone else gets 404, so another performer's
    recording never shows that it exists."""
    if not user.is_authenticated:
        raise Http404
    recording = with_readiness(Recording.objects.filter(uid=uid, performer__user=user)).first()
    if recording is None:
        raise Http404("No such recording.")
    return recording


def listing_for_owner(*, user: User, listing_id: int) -> Listing:
    if not user.is_authenticated:
        raise Http404
    listing = (
        Listing.objects.filter(pk=listing_id, performer__user=user)
        .select_related("performer", "reviewed_by")
        .first()
    )
    if listing is None:
        raise Http404("No such listing.")
    return listing


# --- Performer lists ----------------------------------------------------------------------


def recordings_for_performer(performer: PerformerProfile) -> QuerySet[Recording]:
    """The performer's recordings, newest first, with their readiness facts."""
    return with_readiness(Recording.objects.filter(performer=performer)).order_by(
        "-created_at", "-id"
    )


def recordings_with_state(performer: PerformerProfile) -> list[tuple[Recording, RecordingState]]:
    return [(r, recording_state(r)) for r in recordings_for_performer(performer)]


def recordings_shared_with(performer: PerformerProfile) -> QuerySet[Recording]:
    """Recordings of other performers in which this performer holds a split."""
    shares = RecordingSplit.objects.filter(recording=OuterRef("pk"), performer=performer)
    return (
        Recording.objects.filter(Exists(shares))
        .exclude(performer=performer)
        .select_related("performer")
        .annotate(my_share_bps=Subquery(shares.values("share_bps")[:1]))
        .order_by("-created_at", "-id")
    )


def listings_for_performer(performer: PerformerProfile) -> QuerySet[Listing]:
    """The performer's listings with their items (recording ids in order)."""
    return (
        Listing.objects.filter(performer=performer)
        .annotate(recording_count=Count("items"))
        .prefetch_related(
            Prefetch(
                "items",
                queryset=ListingItem.objects.select_related("recording").order_by("position", "id"),
            )
        )
        .order_by("-updated_at", "-id")
    )


def listings_including(recording: Recording) -> QuerySet[Listing]:
    return (
        Listing.objects.filter(items__recording=recording)
        .annotate(recording_count=Count("items"))
        .order_by("-updated_at", "-id")
    )


def listing_ids_on_offer_with(recording: Recording) -> list[int]:
    """Listings that offer the recording now (published or in review): the
    ones a consent withdrawal takes off sale."""
    return list(
        Listing.objects.filter(
            items__recording=recording,
            status__in=[Listing.Status.PUBLISHED, Listing.Status.IN_REVIEW],
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def listing_history(listing: Listing, limit: int = 20):
    """The listing's audited changes, newest first (created, edited, sent to
    review, approved, rejected, unpublished)."""
    from core.models import AuditEvent

    return AuditEvent.objects.filter(
        target_type="marketplace.listing", target_id=str(listing.pk)
    ).select_related("actor")[:limit]


def consent_history(recording: Recording) -> QuerySet[ConsentRecord]:
    """Every consent record of the recording, newest first, with its events."""
    return (
        ConsentRecord.objects.filter(recording=recording)
        .select_related("consent_text", "signed_by")
        .prefetch_related("events__actor")
        .order_by("-signed_at", "-id")
    )


# --- Staff review ------------------------------------------------------------------------


def listings_review_queue() -> QuerySet[Listing]:
    """Listings waiting for review, oldest submission first, with every
    recording's readiness facts (a fixed number of queries)."""
    recordings = with_readiness(Recording.objects.all())
    return (
        Listing.objects.filter(status=Listing.Status.IN_REVIEW)
        .select_related("performer__user")
        .prefetch_related(
            Prefetch(
                "items",
                queryset=ListingItem.objects.order_by("position", "id").prefetch_related(
                    Prefetch("recording", queryset=recordings)
                ),
            )
        )
        .order_by("submitted_at", "id")
    )


def listings_changed_since_review() -> QuerySet[Listing]:
    """Published listings edited since staff approved them (or last looked
    at their edits), longest waiting first: their text and terms, or their
    recordings' signatures or provenance. Such edits keep a listing on sale
    (new terms apply to future sales only); staff see them here."""
    items = ListingItem.objects.select_related(
        "recording__signature", "recording__provenance"
    ).order_by("position", "id")
    return (
        Listing.objects.filter(
            Q(reviewed_revision__lt=F("revision")) | Q(recordings_changed=True),
            status=Listing.Status.PUBLISHED,
        )
        .select_related("performer__user")
        .prefetch_related(Prefetch("items", queryset=items))
        .order_by("updated_at", "id")
    )


class TermChange(NamedTuple):
    label: str
    before: str
    after: str


_TERM_LABELS = {
    "title": "Title",
    "description": "Description",
    "duration_days": "Term",
    "permitted_uses": "Permitted uses",
    "worldwide": "Worldwide",
    "territories": "Territories",
    "sublicensing_allowed": "Sublicensing",
    "attribution_required": "Attribution required",
    "price_minor": "Price",
    "currency": "Currency",
    "revenue_share_bps": "Revenue share",
    "revenue_threshold_minor": "Revenue threshold",
    "per_unit_rates": "Per-unit rates",
    "reuse_caps": "Reuse caps",
}


def listing_changes_since_review(listing: Listing) -> list[TermChange]:
    """What differs between what staff reviewed and the listing now, field by
    field, in words: its terms, then its recordings' signatures and
    provenance. No queries on a listing from
    ``listings_changed_since_review``."""
    from marketplace.services import recording_review_snapshot

    changes = _term_changes(listing)
    seen_recordings = listing.reviewed_recordings or {}
    for item in listing.items.all():
        recording = item.recording
        seen = seen_recordings.get(recording.uid)
        if seen is None:
            continue
        now = recording_review_snapshot(recording)
        for key in dict.fromkeys([*seen, *now]):
            before, after = seen.get(key), now.get(key)
            if before != after:
                what = _RECORDING_LABELS.get(key, key)
                changes.append(
                    TermChange(
                        f"“{recording.title}” ({recording.uid}): {what}",
                        _recording_words(key, before),
                        _recording_words(key, after),
                    )
                )
    return changes


_RECORDING_LABELS = {
    "signature.primary_emotion": "primary emotion",
    "signature.intensity": "intensity",
    "signature.valence": "valence",
    "signature.arousal": "arousal",
    "signature.authenticity": "authenticity",
    "signature.arc": "arc",
    "signature.action_units": "FACS action units",
    "signature.vocal_events": "vocal events",
    "signature.annotator": "annotated by",
    "signature.description": "description",
    "signature.tags": "tags",
    "provenance.performer_name": "performer name (provenance)",
    "provenance.performer_contact": "performer contact (provenance)",
    "provenance.recording_date": "recording date (provenance)",
    "provenance.session_name": "session (provenance)",
    "provenance.studio": "studio (provenance)",
    "provenance.annotator": "annotator (provenance)",
}


def _seconds(value) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value)


def _emotion_words(code) -> str:
    return Emotion(code).label if code in Emotion.values else str(code)


def _recording_words(key: str, value) -> str:
    if value is None or value == "" or value == []:
        return "—"
    if key == "signature.primary_emotion":
        return _emotion_words(value)
    if key == "signature.authenticity":
        return Authenticity(value).label if value in Authenticity.values else str(value)
    if key == "signature.intensity":
        return f"{value}/5"
    if key == "signature.valence":
        return f"{float(value):+.2f}"
    if key == "signature.arousal":
        return f"{float(value):.2f}"
    if key == "signature.arc":
        return "; ".join(
            f"{_seconds(segment.get('start'))}–{_seconds(segment.get('end'))} s "
            f"{_emotion_words(segment.get('emotion')).lower()} {segment.get('intensity')}/5"
            + (f" ({segment['note']})" if segment.get("note") else "")
            for segment in value
        )
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _term_changes(listing: Listing) -> list[TermChange]:
    reviewed = listing.reviewed_terms or {}
    changes = []
    for name in Listing.TERM_FIELDS:
        label = _TERM_LABELS[name]
        before, after = reviewed.get(name), getattr(listing, name)
        if before == after:
            continue
        currency_before = reviewed.get("currency", listing.currency)
        changes.append(
            TermChange(
                label,
                _term_words(name, before, currency_before),
                _term_words(name, after, listing.currency),
            )
        )
    return changes


def _term_words(name: str, value, currency: str) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return "—"
    if name in ("price_minor", "revenue_threshold_minor"):
        return money_label(value, currency)
    if name == "duration_days":
        return f"{value} days ({duration_label(value)})"
    if name == "revenue_share_bps":
        return bps_label(value)
    if name == "permitted_uses":
        return ", ".join(uses_labels(value))
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if name == "per_unit_rates":
        return "; ".join(
            f"{money_label(rate.get('amount_minor'), currency)} per {rate.get('per', 1):,} "
            f"{metric.replace('_', ' ')}"
            for metric, rate in value.items()
        )
    if isinstance(value, dict):
        return "; ".join(f"{key.replace('_', ' ')}: {v}" for key, v in value.items())
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def listing_for_staff(listing_id: int) -> Listing:
    listing = Listing.objects.filter(pk=listing_id).select_related("performer").first()
    if listing is None:
        raise Http404("No such listing.")
    return listing


def performers_by_email(emails: Iterable[str]) -> dict[str, PerformerProfile]:
    """Performer profiles by their account's email address (any case), keyed
    lower-cased, for naming co-performers in splits. One query."""
    wanted = {str(e).strip().lower() for e in emails if str(e).strip()}
    if not wanted:
        return {}
    match = Q()
    for email in wanted:
        match |= Q(user__email__iexact=email)
    profiles = PerformerProfile.objects.filter(match).select_related("user")
    return {p.user.email.lower(): p for p in profiles}


# --- Previews -----------------------------------------------------------------------------


def recording_ids_for_preview_rebuild(*, include_ready: bool = False) -> list[int]:
    """Recordings ``manage.py rebuild_previews`` builds: those whose preview
    is not ready (pending or failed, for whatever reason), or with
    ``include_ready`` every recording that still has its original. Removed
    recordings are left alone."""
    recordings = Recording.objects.exclude(status=Recording.Status.REMOVED).exclude(file="")
    if not include_ready:
        recordings = recordings.exclude(preview_status=Recording.PreviewStatus.READY)
    return list(recordings.order_by("pk").values_list("pk", flat=True))


# --- Display helpers --------------------------------------------------------------------

CURRENCY_SYMBOLS = {"USD": "US$", "EUR": "€", "GBP": "£", "CAD": "CA$", "AUD": "A$"}


def money_label(amount_minor: int | None, currency: str) -> str:
    """500_00 USD -> "US$500.00" (exact: integer arithmetic, no floats)."""
    if amount_minor is None:
        return "—"
    sign = "−" if amount_minor < 0 else ""
    whole, cents = divmod(abs(int(amount_minor)), 100)
    symbol = CURRENCY_SYMBOLS.get(currency, currency + " ")
    return f"{sign}{symbol}{whole:,}.{cents:02d}"


def bps_label(bps: int | None) -> str:
    """2000 -> "20%", 3333 -> "33.33%"."""
    if bps is None:
        return "—"
    percent = (Decimal(int(bps)) / 100).normalize()
    text = f"{percent:f}"
    return f"{text}%"


def duration_label(days: int | None) -> str:
    """License length in words: 730 -> "2 years", 545 -> "1 year, 6 months"."""
    if not days:
        return "—"
    years, rest = divmod(int(days), 365)
    months = round(rest / (365 / 12))
    if months == 12:
        years, months = years + 1, 0
    parts = []
    if years:
        parts.append(f"{years} year{'s' if years != 1 else ''}")
    if months:
        parts.append(f"{months} month{'s' if months != 1 else ''}")
    return ", ".join(parts) or f"{days} days"


def uses_labels(codes) -> list[str]:
    return [Use(c).label for c in codes if c in Use.values]


# --- Performer dashboard ---------------------------------------------------------------


@dataclass
class AttentionItem:
    kind: str  # "recording" or "listing"
    title: str
    text: str
    url_name: str
    url_arg: str | int
    tone: str = "warning"


@dataclass
class PerformerOverview:
    recordings: list[tuple[Recording, RecordingState]]
    state_counts: dict[str, int]
    listings: list[Listing]
    listing_counts: dict[str, int]
    attention: list[AttentionItem]
    shared: list[Recording]

    @property
    def recording_total(self) -> int:
        return len(self.recordings)


def performer_overview(performer: PerformerProfile) -> PerformerOverview:
    """Everything the performer dashboard shows about the catalogue, in a
    fixed number of queries however many recordings and listings there are:
    recordings with their readiness (2), listings with their items (2), and
    recordings shared with the performer (1)."""
    recordings = list(recordings_for_performer(performer))
    facts_by_id = {r.pk: recording_facts(r) for r in recordings}
    rows = [(r, recording_state(r, facts_by_id[r.pk])) for r in recordings]
    by_id = {r.pk: r for r in recordings}

    state_counts: dict[str, int] = {}
    attention: list[AttentionItem] = []
    for recording, state in rows:
        state_counts[state.code] = state_counts.get(state.code, 0) + 1
        if state.needs_attention:
            attention.append(
                AttentionItem(
                    kind="recording",
                    title=recording.title,
                    text=f"{state.label}: {state.next_step}",
                    url_name="recording_detail",
                    url_arg=recording.uid,
                    tone=state.tone,
                )
            )

    from marketplace.services import listing_problems

    listings = list(
        Listing.objects.filter(performer=performer)
        .prefetch_related(
            Prefetch("items", queryset=ListingItem.objects.order_by("position", "id"))
        )
        .order_by("-updated_at", "-id")
    )
    listing_counts: dict[str, int] = {}
    for listing in listings:
        listing_counts[listing.status] = listing_counts.get(listing.status, 0) + 1
        items = list(listing.items.all())
        listing.recording_count = len(items)
        members = [by_id[i.recording_id] for i in items if i.recording_id in by_id]
        listing.problems = listing_problems(listing, members)
        listing.on_sale = listing.status == Listing.Status.PUBLISHED and not listing.problems
        if listing.status == Listing.Status.REJECTED:
            attention.append(
                AttentionItem(
                    kind="listing",
                    title=listing.title,
                    text=f"Staff asked for changes: {listing.rejection_reason}",
                    url_name="listing_detail",
                    url_arg=listing.pk,
                    tone="danger",
                )
            )
        elif listing.status == Listing.Status.PUBLISHED and listing.problems:
            attention.append(
                AttentionItem(
                    kind="listing",
                    title=listing.title,
                    text="Published but not on sale: " + listing.problems[0],
                    url_name="listing_detail",
                    url_arg=listing.pk,
                )
            )
        elif listing.status == Listing.Status.UNPUBLISHED and listing.rejection_reason:
            attention.append(
                AttentionItem(
                    kind="listing",
                    title=listing.title,
                    text=f"Unpublished: {listing.rejection_reason}",
                    url_name="listing_detail",
                    url_arg=listing.pk,
                    tone="neutral",
                )
            )
        elif listing.status == Listing.Status.DRAFT:
            attention.append(
                AttentionItem(
                    kind="listing",
                    title=listing.title,
                    text="Draft: submit it for review when it is ready.",
                    url_name="listing_detail",
                    url_arg=listing.pk,
                    tone="info",
                )
            )
    return PerformerOverview(
        recordings=rows,
        state_counts=state_counts,
        listings=listings,
        listing_counts=listing_counts,
        attention=attention,
        shared=list(recordings_shared_with(performer)),
    )
