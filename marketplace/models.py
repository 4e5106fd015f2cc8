"""Recordings and what travels with them (provenance, consent, emotional
signature, splits), listings that offer them, and the catalogue index."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from accounts.models import PerformerProfile
from marketplace.taxonomy import Annotator, Authenticity, Emotion

_UID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U


def new_recording_uid() -> str:
    """The platform's unique recording ID, e.g. REC-7K2M9QXA4T: easy to read
    aloud and to quote in a takedown request."""
    return "REC-" + "".join(secrets.choice(_UID_ALPHABET) for _ in range(10))


def recording_upload_to(instance: Recording, filename: str) -> str:
    return f"recordings/{instance.performer_id}/{instance.uid}/original{_suffix(filename)}"


def preview_upload_to(instance: Recording, filename: str) -> str:
    return f"previews/{instance.uid}{_suffix(filename)}"


def _suffix(filename: str) -> str:
    from pathlib import PurePath

    return PurePath(filename).suffix.lower()[:8]


class Recording(models.Model):
    class MediaKind(models.TextChoices):
        AUDIO = "audio", "Audio"
        VIDEO = "video", "Video"

    class Status(models.TextChoices):
        """Set by staff (takedowns). What a performer sees as the recording's
        state ("missing provenance", "listed" …) is derived: see
        ``marketplace.selectors.recording_state``."""

        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        REMOVED = "removed", "Removed"

    class PreviewStatus(models.TextChoices):
        PENDING = "pending", "Being prepared"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    uid = models.CharField(max_length=20, unique=True, default=new_recording_uid, editable=False)
    performer = models.ForeignKey(
        PerformerProfile, on_delete=models.PROTECT, related_name="recordings"
    )
    title = models.CharField(max_length=200)
    language = models.CharField(
        max_length=35, blank=True, help_text="BCP 47 tag of the spoken language, e.g. en, es-MX."
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ACTIVE)

    file = models.FileField(upload_to=recording_upload_to, max_length=300)
    original_filename = models.CharField(max_length=255)
    size_bytes = models.BigIntegerField()
    sha256 = models.CharField(max_length=64, db_index=True)
    media_kind = models.CharField(max_length=5, choices=MediaKind.choices)
    container = models.CharField(max_length=10)  # wav, flac, mp3, ogg, mp4, webm
    mime_type = models.CharField(max_length=40)
    codec = models.CharField(max_length=40, blank=True)
    duration_seconds = models.FloatField()
    sample_rate = models.PositiveIntegerField(null=True, blank=True)
    channels = models.PositiveSmallIntegerField(null=True, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    frame_rate = models.FloatField(null=True, blank=True)

    class PreviewFailure(models.TextChoices):
        """Why a preview failed, which decides whether sending the task again
        can help (``marketplace.services.recordings.recording_previews_resend``)."""

        NONE = "", "—"
        MEDIA = "media", "The media cannot be previewed"  # permanent
        STORAGE = "storage", "The original could not be read"  # transient: resent
        ABANDONED = "abandoned", "No worker built it after every resend"

    preview = models.FileField(upload_to=preview_upload_to, max_length=300, blank=True)
    preview_status = models.CharField(
        max_length=8, choices=PreviewStatus.choices, default=PreviewStatus.PENDING
    )
    preview_failure = models.CharField(
        max_length=10, choices=PreviewFailure.choices, default=PreviewFailure.NONE, blank=True
    )
    # When the preview task was last sent (at upload, then by each resend).
    preview_requested_at = models.DateTimeField(null=True, blank=True)
    preview_resends = models.PositiveSmallIntegerField(default=0)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # The same file uploaded twice by one performer is one recording.
            models.UniqueConstraint(
                fields=["performer", "sha256"], name="recording_unique_file_per_performer"
            ),
            models.CheckConstraint(
                condition=Q(duration_seconds__gt=0), name="recording_duration_positive"
            ),
            models.CheckConstraint(condition=Q(size_bytes__gt=0), name="recording_size_positive"),
        ]
        indexes = [
            # The resend sweep looks only at the few previews not yet ready.
            models.Index(
                fields=["preview_requested_at"],
                condition=~Q(preview_status="ready"),
                name="recording_preview_unfinished",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.uid} {self.title}"


class Provenance(models.Model):
    """Where a recording comes from. Performer name, contact, recording date,
    consent scope (from the active consent record) and the recording's uid are
    mandatory before it can be listed; session, studio and annotator are
    recorded where known."""

    # What a performer records (everything but the recording and the time):
    # the API, the admin and staff review all read this list.
    FIELDS = (
        "performer_name",
        "performer_contact",
        "recording_date",
        "session_name",
        "studio",
        "annotator",
    )

    recording = models.OneToOneField(Recording, on_delete=models.CASCADE, related_name="provenance")
    performer_name = models.CharField(max_length=200, blank=True)
    performer_contact = models.CharField(max_length=200, blank=True)
    recording_date = models.DateField(null=True, blank=True)
    session_name = models.CharField(max_length=200, blank=True)
    studio = models.CharField(max_length=200, blank=True, help_text="Studio or location")
    annotator = models.CharField(max_length=200, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Provenance of recording {self.recording_id}"

    def missing_fields(self) -> list[str]:
        missing = []
        if not self.performer_name.strip():
            missing.append("performer_name")
        if not self.performer_contact.strip():
            missing.append("performer_contact")
        if self.recording_date is None:
            missing.append("recording_date")
        return missing


class ConsentText(models.Model):
    """A published version of the consent wording. Never edited: a change is
    a new version. Each consent record stores which version and its hash."""

    version = models.CharField(max_length=40, unique=True)
    body = models.TextField()
    sha256 = models.CharField(max_length=64)
    published_at = models.DateTimeField()

    class Meta:
        ordering = ["-published_at"]

    def __str__(self) -> str:
        return self.version


class ConsentRecord(models.Model):
    """A performer's consent for one recording. Records are never deleted;
    a new consent supersedes the old one, and withdrawal is an event on it."""

    recording = models.ForeignKey(Recording, on_delete=models.PROTECT, related_name="consents")
    consent_text = models.ForeignKey(ConsentText, on_delete=models.PROTECT, related_name="+")
    consent_text_sha256 = models.CharField(max_length=64)
    allowed_uses = models.JSONField(default=list)
    sensitive_content = models.JSONField(default=list, blank=True)
    sensitive_content_licensable = models.BooleanField(default=False)
    signature_name = models.CharField(max_length=200)
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    signed_at = models.DateTimeField()
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=400, blank=True)
    superseded_at = models.DateTimeField(null=True, blank=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawal_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-signed_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["recording"],
                condition=Q(superseded_at__isnull=True),
                name="one_current_consent_per_recording",
            ),
        ]

    def __str__(self) -> str:
        return f"Consent {self.pk} for recording {self.recording_id}"

    @property
    def is_active(self) -> bool:
        return self.superseded_at is None and self.withdrawn_at is None


class ConsentEvent(models.Model):
    """Append-only history of consent: given, superseded, withdrawn."""

    class Kind(models.TextChoices):
        GIVEN = "given", "Given"
        SUPERSEDED = "superseded", "Superseded"
        WITHDRAWN = "withdrawn", "Withdrawn"

    consent = models.ForeignKey(ConsentRecord, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} at {self.at:%Y-%m-%d %H:%M}"


class EmotionalSignature(models.Model):
    """What the recording expresses. ``arc`` is a list of timed segments
    ``{"start": s, "end": s, "emotion": code, "intensity": 1-5, "note": str}``
    inside the recording's duration and not overlapping (checked by
    ``marketplace.services.signature_save``)."""

    # What a performer describes (everything but the recording and the
    # time): the API, the admin, the catalogue and staff review read this list.
    FIELDS = (
        "primary_emotion",
        "intensity",
        "valence",
        "arousal",
        "authenticity",
        "arc",
        "action_units",
        "vocal_events",
        "annotator",
        "description",
        "tags",
    )

    recording = models.OneToOneField(Recording, on_delete=models.CASCADE, related_name="signature")
    primary_emotion = models.CharField(max_length=20, choices=Emotion.choices)
    intensity = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    valence = models.FloatField(validators=[MinValueValidator(-1), MaxValueValidator(1)])
    arousal = models.FloatField(validators=[MinValueValidator(0), MaxValueValidator(1)])
    authenticity = models.CharField(max_length=12, choices=Authenticity.choices)
    arc = models.JSONField(default=list, blank=True)
    action_units = models.JSONField(default=list, blank=True)  # FACS AU numbers
    vocal_events = models.JSONField(default=list, blank=True)
    annotator = models.CharField(max_length=10, choices=Annotator.choices, default=Annotator.SELF)
    description = models.TextField(max_length=2000, blank=True)
    tags = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(intensity__gte=1, intensity__lte=5), name="signature_intensity_1_5"
            ),
            models.CheckConstraint(
                condition=Q(valence__gte=-1, valence__lte=1), name="signature_valence_range"
            ),
            models.CheckConstraint(
                condition=Q(arousal__gte=0, arousal__lte=1), name="signature_arousal_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.primary_emotion} ({self.intensity}/5)"


class RecordingSplit(models.Model):
    """Who shares a recording's earnings, in basis points summing to 10,000."""

    recording = models.ForeignKey(Recording, on_delete=models.CASCADE, related_name="splits")
    performer = models.ForeignKey(PerformerProfile, on_delete=models.PROTECT, related_name="splits")
    share_bps = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(10_000)]
    )

    class Meta:
        ordering = ["-share_bps", "performer_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["recording", "performer"], name="split_unique_performer"
            ),
            models.CheckConstraint(
                condition=Q(share_bps__gte=1, share_bps__lte=10_000), name="split_bps_range"
            ),
        ]

    def __str__(self) -> str:
        return f"performer {self.performer_id}: {self.share_bps} bps"


class Listing(models.Model):
    """An offer of one recording or a pack under license terms. A sale copies
    the terms into the license, so editing a listing changes future sales only."""

    # The fields a performer sets (text and terms), in the order people read
    # them: what listing edits change, and what staff review.
    TERM_FIELDS = (
        "title",
        "description",
        "duration_days",
        "permitted_uses",
        "worldwide",
        "territories",
        "sublicensing_allowed",
        "attribution_required",
        "price_minor",
        "currency",
        "revenue_share_bps",
        "revenue_threshold_minor",
        "per_unit_rates",
        "reuse_caps",
    )

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        IN_REVIEW = "in_review", "In review"
        PUBLISHED = "published", "Published"
        REJECTED = "rejected", "Changes requested"
        UNPUBLISHED = "unpublished", "Unpublished"

    performer = models.ForeignKey(
        PerformerProfile, on_delete=models.PROTECT, related_name="listings"
    )
    title = models.CharField(max_length=200)
    description = models.TextField(max_length=5000, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    recordings = models.ManyToManyField(Recording, through="ListingItem", related_name="listings")

    # Terms (copied into each license at purchase).
    duration_days = models.PositiveIntegerField(default=730)
    permitted_uses = models.JSONField(default=list)
    worldwide = models.BooleanField(default=True)
    territories = models.JSONField(default=list, blank=True)  # ISO 3166-1 alpha-2 codes
    sublicensing_allowed = models.BooleanField(default=False)
    attribution_required = models.BooleanField(default=False)
    exclusivity = models.CharField(max_length=16, default="non_exclusive", editable=False)
    price_minor = models.BigIntegerField(help_text="Price in minor units (cents).")
    currency = models.CharField(max_length=3, default="USD")
    revenue_share_bps = models.PositiveIntegerField(default=2000)
    revenue_threshold_minor = models.BigIntegerField(default=1_000_000)  # US$10,000.00
    per_unit_rates = models.JSONField(default=dict, blank=True)  # {metric: {"amount_minor", "per"}}
    reuse_caps = models.JSONField(default=dict, blank=True)  # {"max_models_trained": n, ...}

    rejection_reason = models.TextField(blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    published_at = models.DateTimeField(null=True, blank=True)
    revision = models.PositiveIntegerField(default=1)
    # The terms staff approved, or last looked at after an edit, and their
    # revision: a published listing whose revision has moved past it holds
    # edits staff have not seen (``selectors.listings_changed_since_review``).
    reviewed_revision = models.PositiveIntegerField(null=True, blank=True)
    reviewed_terms = models.JSONField(null=True, blank=True)
    # The same for its recordings' signatures and provenance, by recording
    # uid (``services.recording_review_snapshot``); ``recordings_changed``
    # says whether any of them differs now.
    reviewed_recordings = models.JSONField(null=True, blank=True)
    recordings_changed = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(duration_days__gte=30, duration_days__lte=1095),
                name="listing_duration_30_1095",
            ),
            models.CheckConstraint(
                condition=Q(price_minor__gte=0), name="listing_price_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(revenue_share_bps__lte=10_000),
                name="listing_revenue_share_at_most_100pct",
            ),
            models.CheckConstraint(
                condition=Q(revenue_threshold_minor__gte=0), name="listing_threshold_not_negative"
            ),
        ]
        indexes = [models.Index(fields=["status", "-published_at"])]

    def __str__(self) -> str:
        return self.title


class ListingItem(models.Model):
    listing = models.ForeignKey(Listing, on_delete=models.CASCADE, related_name="items")
    recording = models.ForeignKey(Recording, on_delete=models.PROTECT, related_name="listing_items")
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["listing", "recording"], name="listing_item_unique"),
        ]

    def __str__(self) -> str:
        return f"listing {self.listing_id} #{self.position}: recording {self.recording_id}"


class CatalogueEntry(models.Model):
    """The search index: one row per (published listing, recording), with the
    fields buyers filter on flattened into one table. Rebuilt for a listing
    by ``marketplace.services.catalogue_refresh_listing`` whenever the
    listing, its recordings, their signatures or their consent change; a
    listing that is not for sale has no rows. On PostgreSQL, ``search_document``
    has a GIN full-text index (migration 0002)."""

    listing = models.ForeignKey(Listing, on_delete=models.CASCADE, related_name="catalogue_entries")
    recording = models.ForeignKey(
        Recording, on_delete=models.CASCADE, related_name="catalogue_entries"
    )
    performer = models.ForeignKey(PerformerProfile, on_delete=models.CASCADE, related_name="+")
    primary_emotion = models.CharField(max_length=20)
    intensity = models.PositiveSmallIntegerField()
    valence = models.FloatField()
    arousal = models.FloatField()
    authenticity = models.CharField(max_length=12)
    language = models.CharField(max_length=35)
    media_kind = models.CharField(max_length=5)
    duration_seconds = models.FloatField()
    price_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    use_model_training = models.BooleanField(default=False)
    use_evaluation = models.BooleanField(default=False)
    use_fine_tuning = models.BooleanField(default=False)
    use_synthetic_generation = models.BooleanField(default=False)
    use_commercial_deployment = models.BooleanField(default=False)
    use_research_only = models.BooleanField(default=False)
    worldwide = models.BooleanField(default=True)
    territories = models.CharField(max_length=800, blank=True)  # "|DE|FR|" for a cheap contains
    search_document = models.TextField()
    published_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["listing", "recording"], name="catalogue_entry_unique"),
        ]
        indexes = [
            models.Index(fields=["primary_emotion", "intensity"]),
            models.Index(fields=["authenticity"]),
            models.Index(fields=["language"]),
            models.Index(fields=["price_minor"]),
            models.Index(fields=["duration_seconds"]),
            models.Index(fields=["performer"]),
            models.Index(fields=["-published_at"]),
        ]

    def __str__(self) -> str:
        return f"listing {self.listing_id} / recording {self.recording_id}"


class ImportBatch(models.Model):
    """A session's worth of takes imported from a CSV manifest, through the
    web UI or ``manage.py import_recordings``. Rows are validated one by one;
    a bad row never blocks the good ones."""

    class Source(models.TextChoices):
        WEB = "web", "Web upload"
        COMMAND = "command", "Command line"
        API = "api", "API"

    performer = models.ForeignKey(
        PerformerProfile, on_delete=models.PROTECT, related_name="imports"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    source = models.CharField(max_length=8, choices=Source.choices)
    manifest_name = models.CharField(max_length=255)
    manifest_sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Import {self.pk} ({self.manifest_name})"


class ImportRow(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for its file"
        IMPORTED = "imported", "Imported"
        ALREADY_IMPORTED = "already_imported", "Already imported"
        REFUSED = "refused", "Refused"

    batch = models.ForeignKey(ImportBatch, on_delete=models.CASCADE, related_name="rows")
    row_number = models.PositiveIntegerField()  # 1 = first data row after the header
    file_name = models.CharField(max_length=255)
    data = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    error_code = models.CharField(max_length=60, blank=True)
    message = models.TextField(blank=True)
    recording = models.ForeignKey(
        Recording, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["batch", "row_number"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "row_number"], name="import_row_unique"),
        ]

    def __str__(self) -> str:
        return f"Row {self.row_number} ({self.file_name}): {self.status}"
