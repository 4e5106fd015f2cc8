"""What the public catalogue API shows of a listing. Deliberately explicit:
a recording's original file (its URL, storage path, hash or size) is never
part of it — only the preview, through its own view."""

from __future__ import annotations

from datetime import UTC

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from marketplace.models import Listing, Recording
from marketplace.selectors_catalogue import (
    PREVIEW_UID,
    listing_terms_summary,
    preview_path_template,
    preview_url_of,
)

_PREVIEW_READY = Recording.PreviewStatus.READY


class ArcSegmentSerializer(serializers.Serializer):
    start = serializers.FloatField(help_text="Seconds from the start of the recording.")
    end = serializers.FloatField(help_text="Seconds from the start of the recording.")
    emotion = serializers.CharField()
    intensity = serializers.IntegerField(min_value=1, max_value=5)
    note = serializers.CharField(allow_blank=True)


class SignatureSerializer(serializers.Serializer):
    primary_emotion = serializers.CharField()
    intensity = serializers.IntegerField(help_text="1 (faint) to 5 (overwhelming).")
    valence = serializers.FloatField(help_text="−1 (unpleasant) to 1 (pleasant).")
    arousal = serializers.FloatField(help_text="0 (calm) to 1 (highly activated).")
    authenticity = serializers.CharField()
    arc = ArcSegmentSerializer(many=True)
    vocal_events = serializers.ListField(child=serializers.CharField())
    action_units = serializers.ListField(
        child=serializers.IntegerField(), help_text="FACS action unit numbers."
    )
    annotator = serializers.CharField(help_text="self, expert or automatic.")
    description = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField())


class CatalogueRecordingSerializer(serializers.Serializer):
    uid = serializers.CharField()
    title = serializers.CharField()
    language = serializers.CharField()
    duration_seconds = serializers.FloatField()
    media_kind = serializers.CharField()
    signature = serializers.SerializerMethodField()
    preview_url = serializers.SerializerMethodField()

    @extend_schema_field(SignatureSerializer(allow_null=True))
    def get_signature(self, recording: Recording):
        signature = getattr(recording, "signature", None)
        return SignatureSerializer(signature).data if signature is not None else None

    @extend_schema_field(OpenApiTypes.URI)
    def get_preview_url(self, recording: Recording) -> str | None:
        url = preview_url_of(recording)
        request = self.context.get("request")
        if url and request is not None:
            return request.build_absolute_uri(url)
        return url


class PerUnitRateSerializer(serializers.Serializer):
    amount_minor = serializers.IntegerField()
    per = serializers.IntegerField()


class LicenseTermsSerializer(serializers.Serializer):
    summary = serializers.SerializerMethodField()
    duration_days = serializers.IntegerField()
    permitted_uses = serializers.ListField(child=serializers.CharField())
    worldwide = serializers.BooleanField()
    territories = serializers.ListField(
        child=serializers.CharField(), help_text="ISO 3166-1 alpha-2 codes; empty if worldwide."
    )
    sublicensing_allowed = serializers.BooleanField()
    attribution_required = serializers.BooleanField()
    exclusivity = serializers.CharField()
    revenue_share_bps = serializers.IntegerField(
        help_text="Share of reported downstream revenue above the threshold, in basis points."
    )
    revenue_threshold_minor = serializers.IntegerField(
        help_text="Per license, in minor units of the listing's currency."
    )
    per_unit_rates = serializers.DictField(child=PerUnitRateSerializer())
    reuse_caps = serializers.DictField(child=serializers.IntegerField())

    def get_summary(self, listing: Listing) -> str:
        return listing_terms_summary(listing)


class CataloguePerformerSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    stage_name = serializers.CharField()


class CatalogueListingSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    description = serializers.CharField()
    performer = CataloguePerformerSerializer()
    price_minor = serializers.IntegerField(help_text="Price in minor units (cents).")
    currency = serializers.CharField()
    published_at = serializers.DateTimeField()
    license_terms = LicenseTermsSerializer(source="*")
    recordings = serializers.SerializerMethodField()

    @extend_schema_field(CatalogueRecordingSerializer(many=True))
    def get_recordings(self, listing: Listing):
        recordings = listing.catalogue_recordings
        return CatalogueRecordingSerializer(recordings, many=True, context=self.context).data


class CatalogueResultSerializer(CatalogueListingSerializer):
    matched_recordings = serializers.SerializerMethodField(
        help_text="uids of the listing's recordings that matched every filter."
    )

    def get_matched_recordings(self, listing: Listing) -> list[str]:
        matched = getattr(listing, "matched_recording_ids", set())
        return [r.uid for r in listing.catalogue_recordings if r.pk in matched]


class FacetsSerializer(serializers.Serializer):
    emotion = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="Matching listings per emotion, counted with every filter but emotion.",
    )
    authenticity = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="Matching listings per authenticity, counted with every filter but authenticity.",
    )


class CataloguePageSerializer(serializers.Serializer):
    count = serializers.IntegerField(
        help_text="Matching listings in all pages; a lower bound when count_exact is false."
    )
    count_exact = serializers.BooleanField()
    page = serializers.IntegerField()
    page_size = serializers.IntegerField()
    num_pages = serializers.IntegerField(allow_null=True, help_text="Null when not known.")
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    sort = serializers.CharField()
    results = CatalogueResultSerializer(many=True)
    facets = FacetsSerializer()


# --- The data itself -----------------------------------------------------------------------
# The catalogue is the hottest read in the product. Building nested DRF
# serializers per listing and per recording costs more than all its queries,
# so responses are built as plain dicts by the functions below; the classes
# above describe them to the OpenAPI schema, and a test holds the two to the
# same fields.


def _iso(moment) -> str | None:
    """As DRF writes datetimes: ISO 8601 in UTC with a Z."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def signature_data(signature) -> dict | None:
    if signature is None:
        return None
    return {
        "primary_emotion": signature.primary_emotion,
        "intensity": signature.intensity,
        "valence": signature.valence,
        "arousal": signature.arousal,
        "authenticity": signature.authenticity,
        "arc": [
            {
                "start": segment.get("start"),
                "end": segment.get("end"),
                "emotion": segment.get("emotion"),
                "intensity": segment.get("intensity"),
                "note": segment.get("note", ""),
            }
            for segment in signature.arc or []
        ],
        "vocal_events": list(signature.vocal_events or []),
        "action_units": list(signature.action_units or []),
        "annotator": signature.annotator,
        "description": signature.description,
        "tags": list(signature.tags or []),
    }


def preview_url_template(site: str = "") -> str:
    """The absolute URL of a preview, with ``PREVIEW_UID`` for the recording's
    uid: looked up once per response, not once per recording."""
    return site + preview_path_template()


def recording_data(recording, site: str = "", *, preview_template: str | None = None) -> dict:
    """``site`` is prefixed to the preview's path: the scheme and host of
    the request (``site_of(request)``), for an absolute URL.
    ``preview_template``, if given, is ``preview_url_template(site)``."""
    if preview_template is None:
        preview_template = preview_url_template(site)
    ready = recording.preview_status == _PREVIEW_READY and recording.preview
    return {
        "uid": recording.uid,
        "title": recording.title,
        "language": recording.language,
        "duration_seconds": recording.duration_seconds,
        "media_kind": recording.media_kind,
        "signature": signature_data(getattr(recording, "signature", None)),
        # Only the preview, never the original (as preview_url_of).
        "preview_url": preview_template.replace(PREVIEW_UID, recording.uid) if ready else None,
    }


def site_of(request) -> str:
    """ "https://host" of the request, once per response rather than per URL."""
    return request.build_absolute_uri("/").rstrip("/") if request is not None else ""


def license_terms_data(listing: Listing) -> dict:
    return {
        "summary": listing_terms_summary(listing),
        "duration_days": listing.duration_days,
        "permitted_uses": list(listing.permitted_uses),
        "worldwide": listing.worldwide,
        "territories": [] if listing.worldwide else list(listing.territories),
        "sublicensing_allowed": listing.sublicensing_allowed,
        "attribution_required": listing.attribution_required,
        "exclusivity": listing.exclusivity,
        "revenue_share_bps": listing.revenue_share_bps,
        "revenue_threshold_minor": listing.revenue_threshold_minor,
        "per_unit_rates": dict(listing.per_unit_rates or {}),
        "reuse_caps": dict(listing.reuse_caps or {}),
    }


def listing_data(
    listing, site: str = "", *, result: bool = False, preview_template: str | None = None
) -> dict:
    """One listing (a model or a ``ShownListing``) as
    ``CatalogueListingSerializer`` (or, with ``result``,
    ``CatalogueResultSerializer``) describes it; ``site`` and
    ``preview_template`` as for ``recording_data``."""
    recordings = listing.catalogue_recordings
    if preview_template is None:
        preview_template = preview_url_template(site)
    data = {
        "id": listing.pk,
        "title": listing.title,
        "description": listing.description,
        "performer": {"id": listing.performer_id, "stage_name": listing.performer.stage_name},
        "price_minor": listing.price_minor,
        "currency": listing.currency,
        "published_at": _iso(listing.published_at),
        "license_terms": license_terms_data(listing),
        "recordings": [
            recording_data(r, site, preview_template=preview_template) for r in recordings
        ],
    }
    if result:
        matched = getattr(listing, "matched_recording_ids", set())
        data["matched_recordings"] = [r.uid for r in recordings if r.pk in matched]
    return data
