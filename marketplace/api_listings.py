"""API for a performer's listings, and for describing a recording after
upload (provenance, emotional signature, consent, splits). Authenticated by
a performer's API key or a performer's session; a buyer organization's key
never acts as a performer. Staff review listings here too, from a session
that passed a second factor (never with an API key), as on the staff pages.

Views are thin: values go to the services as sent, and the services check
them (types included) and name the field in their errors, so the API and the
web forms refuse the same things with the same words.
"""

from __future__ import annotations

from datetime import date

from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.middleware import session_passed_mfa
from accounts.models import PerformerProfile
from accounts.selectors import principal_for
from core.errors import NotFound, PermissionDenied, ValidationError
from marketplace import selectors, services
from marketplace.models import (
    ConsentRecord,
    EmotionalSignature,
    Listing,
    ListingItem,
    Provenance,
    Recording,
    RecordingSplit,
)
from marketplace.services import ListingTerms

# --- Who is acting -----------------------------------------------------------------------


def _performer(request) -> PerformerProfile:
    principal = principal_for(request.user, request.auth)
    if principal.performer is None:
        raise PermissionDenied(
            "Only a performer (their session or a performer API key) can do this.",
            code="performer_required",
        )
    return principal.performer


def _own_recording(request, uid: str) -> tuple[PerformerProfile, Recording]:
    performer = _performer(request)
    recording = (
        Recording.objects.select_related("performer").filter(uid=uid, performer=performer).first()
    )
    if recording is None:
        raise NotFound("No such recording.")
    return performer, recording


def _staff(request) -> None:
    """Staff powers need a person at a browser whose session passed a second
    factor, as on the staff pages; never a machine key."""
    principal = principal_for(request.user, request.auth)
    if not principal.is_staff:
        raise PermissionDenied(
            "Only staff (signed in, not with an API key) can do this.", code="staff_required"
        )
    if not session_passed_mfa(request):
        raise PermissionDenied(
            "Confirm your second factor on the staff pages first, then try again.",
            code="mfa_required",
        )


def _with_items(listings):
    return (
        listings.select_related("performer")
        .prefetch_related(
            Prefetch(
                "items",
                queryset=ListingItem.objects.select_related("recording").order_by("position", "id"),
            )
        )
        .order_by("-created_at", "-id")
    )


def _listings_of(performer: PerformerProfile):
    return _with_items(Listing.objects.filter(performer=performer))


def _own_listing(request, listing_id: int) -> tuple[PerformerProfile, Listing]:
    performer = _performer(request)
    listing = _listings_of(performer).filter(pk=listing_id).first()
    if listing is None:
        raise NotFound("No such listing.")
    return performer, listing


# --- Request bodies ------------------------------------------------------------------------


def _body(request, *, allowed: set[str], required: set[str] = frozenset()) -> dict:
    """The JSON object sent, refusing unknown and missing fields by name."""
    data = request.data
    if not isinstance(data, dict):
        raise ValidationError("Send a JSON object.", code="malformed_request")
    unknown = sorted(set(data) - allowed)
    missing = sorted(required - set(data))
    fields = {name: ["Unknown field."] for name in unknown}
    fields.update({name: ["This field is required."] for name in missing})
    if fields:
        first = next(iter(fields))
        raise ValidationError(
            f"{first}: {fields[first][0]}", code="validation_error", details={"fields": fields}
        )
    return dict(data)


def _field_error(field: str, message: str, code: str = "validation_error") -> ValidationError:
    return ValidationError(f"{field}: {message}", code=code, details={"fields": {field: [message]}})


TERM_FIELDS = set(Listing.TERM_FIELDS)


def _recording_ids(performer: PerformerProfile, uids: object) -> list[int]:
    if isinstance(uids, str) or not isinstance(uids, list) or not uids:
        raise _field_error("recordings", "Send a non-empty list of recording IDs (REC-…).")
    wanted = [str(u) for u in uids]
    found = dict(
        Recording.objects.filter(performer=performer, uid__in=wanted).values_list("uid", "pk")
    )
    unknown = [u for u in wanted if u not in found]
    if unknown:
        raise _field_error(
            "recordings", f"No such recording of yours: {', '.join(unknown)}.", code="not_found"
        )
    return [found[u] for u in wanted]


def _terms_from(listing: Listing | None, data: dict) -> ListingTerms:
    """Terms from the request, on top of the listing's current terms for a
    partial update (or the defaults for a new listing)."""
    base = ListingTerms(title="")
    if listing is not None:
        base = ListingTerms(**{name: getattr(listing, name) for name in TERM_FIELDS})
    for name in TERM_FIELDS & set(data):
        setattr(base, name, data[name])
    return base


# --- Responses -------------------------------------------------------------------------------


class PerformerListingSerializer(serializers.ModelSerializer):
    recordings = serializers.SerializerMethodField()
    status_label = serializers.CharField(source="get_status_display", read_only=True)

    class Meta:
        model = Listing
        fields = [
            "id",
            "title",
            "description",
            "status",
            "status_label",
            "rejection_reason",
            "recordings",
            "duration_days",
            "permitted_uses",
            "worldwide",
            "territories",
            "sublicensing_allowed",
            "attribution_required",
            "exclusivity",
            "price_minor",
            "currency",
            "revenue_share_bps",
            "revenue_threshold_minor",
            "per_unit_rates",
            "reuse_caps",
            "revision",
            "submitted_at",
            "reviewed_at",
            "published_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_recordings(self, obj) -> list[str]:
        return [item.recording.uid for item in obj.items.all()]


class PerformerListingDetailSerializer(PerformerListingSerializer):
    problems = serializers.SerializerMethodField()

    class Meta(PerformerListingSerializer.Meta):
        fields = [*PerformerListingSerializer.Meta.fields, "problems"]
        read_only_fields = fields

    def get_problems(self, obj) -> list[str]:
        """Why the listing cannot be offered as it stands (empty when it can)."""
        return services.listing_problems(obj)


class SignatureRecordSerializer(serializers.ModelSerializer):
    recording = serializers.CharField(source="recording.uid", read_only=True)

    class Meta:
        model = EmotionalSignature
        fields = ["recording", *EmotionalSignature.FIELDS, "updated_at"]
        read_only_fields = fields


class ProvenanceRecordSerializer(serializers.ModelSerializer):
    recording = serializers.CharField(source="recording.uid", read_only=True)
    missing_fields = serializers.SerializerMethodField()

    class Meta:
        model = Provenance
        fields = ["recording", *Provenance.FIELDS, "missing_fields", "updated_at"]
        read_only_fields = fields

    def get_missing_fields(self, obj) -> list[str]:
        return obj.missing_fields()


class ConsentRecordSerializer(serializers.ModelSerializer):
    recording = serializers.CharField(source="recording.uid", read_only=True)
    consent_text_version = serializers.CharField(source="consent_text.version", read_only=True)

    class Meta:
        model = ConsentRecord
        fields = [
            "id",
            "recording",
            "consent_text_version",
            "consent_text_sha256",
            "allowed_uses",
            "sensitive_content",
            "sensitive_content_licensable",
            "signature_name",
            "signed_at",
            "ip_address",
        ]
        read_only_fields = fields


_ERRORS = {
    400: OpenApiResponse(description="Invalid input: the error names the field."),
    401: OpenApiResponse(description="Not authenticated."),
    403: OpenApiResponse(description="Not a performer (`performer_required`)."),
    404: OpenApiResponse(description="Not yours, or does not exist."),
}

_LISTING_WRITE = inline_serializer(
    "ListingWrite",
    {
        "recordings": serializers.ListField(child=serializers.CharField(), help_text="REC-… ids"),
        "title": serializers.CharField(),
        "description": serializers.CharField(required=False),
        "duration_days": serializers.IntegerField(required=False, help_text="30–1095; 730"),
        "permitted_uses": serializers.ListField(child=serializers.CharField()),
        "worldwide": serializers.BooleanField(required=False),
        "territories": serializers.ListField(child=serializers.CharField(), required=False),
        "sublicensing_allowed": serializers.BooleanField(required=False),
        "attribution_required": serializers.BooleanField(required=False),
        "price_minor": serializers.IntegerField(help_text="Minor units, e.g. 50000 = 500.00"),
        "currency": serializers.CharField(required=False, help_text="USD by default"),
        "revenue_share_bps": serializers.IntegerField(required=False, help_text="2000 = 20%"),
        "revenue_threshold_minor": serializers.IntegerField(required=False),
        "per_unit_rates": serializers.DictField(
            required=False, help_text='{"training_run": {"amount_minor": 5000, "per": 1}}'
        ),
        "reuse_caps": serializers.DictField(required=False, help_text='{"max_models_trained": 3}'),
    },
)


# --- Listings -----------------------------------------------------------------------------------


class ListingListApi(GenericAPIView):
    serializer_class = PerformerListingSerializer

    @extend_schema(summary="My listings", responses={200: PerformerListingSerializer(many=True)})
    def get(self, request):
        performer = _performer(request)
        page = self.paginate_queryset(_listings_of(performer))
        return self.get_paginated_response(PerformerListingSerializer(page, many=True).data)

    @extend_schema(
        summary="Create a listing (a draft)",
        request=_LISTING_WRITE,
        responses={201: PerformerListingDetailSerializer, **_ERRORS},
    )
    def post(self, request):
        performer = _performer(request)
        data = _body(
            request,
            allowed=TERM_FIELDS | {"recordings"},
            required={"recordings", "title", "permitted_uses", "price_minor"},
        )
        listing = services.listing_create(
            performer=performer,
            by=performer.user,
            recording_ids=_recording_ids(performer, data["recordings"]),
            terms=_terms_from(None, data),
            request=request,
        )
        listing = _listings_of(performer).get(pk=listing.pk)
        return Response(
            PerformerListingDetailSerializer(listing).data, status=status.HTTP_201_CREATED
        )


class ListingDetailApi(APIView):
    @extend_schema(
        summary="One of my listings", responses={200: PerformerListingDetailSerializer, **_ERRORS}
    )
    def get(self, request, listing_id: int):
        _, listing = _own_listing(request, listing_id)
        return Response(PerformerListingDetailSerializer(listing).data)

    @extend_schema(
        summary="Edit a listing (future sales only)",
        description=(
            "Send only the fields to change. A published listing stays published and the new "
            "terms apply to future sales; licenses already sold keep theirs. Changing the "
            "recordings of a published listing sends it back to review."
        ),
        request=_LISTING_WRITE,
        responses={200: PerformerListingDetailSerializer, **_ERRORS},
    )
    def patch(self, request, listing_id: int):
        performer, listing = _own_listing(request, listing_id)
        data = _body(request, allowed=TERM_FIELDS | {"recordings"})
        services.listing_update(
            listing=listing,
            by=performer.user,
            terms=_terms_from(listing, data),
            recording_ids=_recording_ids(performer, data["recordings"])
            if "recordings" in data
            else None,
            request=request,
        )
        listing = _listings_of(performer).get(pk=listing.pk)
        return Response(PerformerListingDetailSerializer(listing).data)


class ListingSubmitApi(APIView):
    @extend_schema(
        summary="Submit a listing for review",
        request=None,
        responses={
            200: PerformerListingDetailSerializer,
            **_ERRORS,
            409: OpenApiResponse(description="Not allowed from its status."),
        },
    )
    def post(self, request, listing_id: int):
        performer, listing = _own_listing(request, listing_id)
        services.listing_submit(listing=listing, by=performer.user, request=request)
        listing = _listings_of(performer).get(pk=listing.pk)
        return Response(PerformerListingDetailSerializer(listing).data)


class ListingUnpublishApi(APIView):
    @extend_schema(
        summary="Unpublish a listing",
        description=(
            "Takes a published (or in-review) listing off the catalogue at once. Licenses "
            "already sold are not affected. Submit it again to return it to review."
        ),
        request=None,
        responses={
            200: PerformerListingDetailSerializer,
            **_ERRORS,
            409: OpenApiResponse(
                description="`invalid_listing_transition`: not published or in review."
            ),
        },
    )
    def post(self, request, listing_id: int):
        performer, listing = _own_listing(request, listing_id)
        services.listing_unpublish(listing=listing, by=performer.user, request=request)
        listing = _listings_of(performer).get(pk=listing.pk)
        return Response(PerformerListingDetailSerializer(listing).data)


REVIEW_DECISIONS = {"approve": True, "reject": False}


class ListingReviewApi(APIView):
    @extend_schema(
        summary="Review a listing (staff)",
        description=(
            "Approve (publish) or reject a listing in review. A rejection needs a `reason`, "
            "which the performer sees. Staff only, signed in with a session that passed a "
            "second factor; API keys are refused."
        ),
        request=inline_serializer(
            "ListingReview",
            {
                "decision": serializers.ChoiceField(choices=sorted(REVIEW_DECISIONS)),
                "reason": serializers.CharField(
                    required=False, help_text="Required to reject: what to change."
                ),
            },
        ),
        responses={
            200: PerformerListingDetailSerializer,
            400: OpenApiResponse(
                description="`unknown_choice` (decision), `validation_error` (no reason for a "
                "rejection) or `listing_not_ready` (`details.problems`)."
            ),
            401: _ERRORS[401],
            403: OpenApiResponse(description="`staff_required` or `mfa_required`."),
            404: OpenApiResponse(description="No such listing."),
            409: OpenApiResponse(description="`invalid_listing_transition`: not in review."),
        },
    )
    def post(self, request, listing_id: int):
        _staff(request)
        listing = selectors.listing_for_staff(listing_id)
        data = _body(request, allowed={"decision", "reason"}, required={"decision"})
        decision = data["decision"]
        if not isinstance(decision, str) or decision not in REVIEW_DECISIONS:
            raise _field_error("decision", "Send approve or reject.", code="unknown_choice")
        reason = data.get("reason", "")
        if not isinstance(reason, str):
            raise _field_error("reason", "Must be text.")
        services.listing_review(
            listing=listing,
            by=request.user,
            approve=REVIEW_DECISIONS[decision],
            reason=reason[:2000],
            request=request,
        )
        listing = _with_items(Listing.objects.filter(pk=listing.pk)).get()
        return Response(PerformerListingDetailSerializer(listing).data)


# --- Recording sub-resources ------------------------------------------------------------------

SIGNATURE_FIELDS = set(EmotionalSignature.FIELDS)


class RecordingSignatureApi(APIView):
    @extend_schema(
        summary="Set a recording's emotional signature",
        request=inline_serializer(
            "SignatureWrite",
            {
                "primary_emotion": serializers.CharField(),
                "intensity": serializers.IntegerField(help_text="1–5"),
                "valence": serializers.FloatField(help_text="−1..1"),
                "arousal": serializers.FloatField(help_text="0..1"),
                "authenticity": serializers.CharField(),
                "arc": serializers.ListField(
                    child=serializers.DictField(),
                    required=False,
                    help_text='[{"start": 0, "end": 4, "emotion": "anger", "intensity": 4}]',
                ),
                "action_units": serializers.ListField(
                    child=serializers.IntegerField(), required=False
                ),
                "vocal_events": serializers.ListField(
                    child=serializers.CharField(), required=False
                ),
                "annotator": serializers.CharField(required=False),
                "description": serializers.CharField(required=False),
                "tags": serializers.ListField(child=serializers.CharField(), required=False),
            },
        ),
        responses={200: SignatureRecordSerializer, **_ERRORS},
    )
    def put(self, request, uid: str):
        performer, recording = _own_recording(request, uid)
        data = _body(
            request,
            allowed=SIGNATURE_FIELDS,
            required={"primary_emotion", "intensity", "valence", "arousal", "authenticity"},
        )
        signature = services.signature_save(
            recording=recording, by=performer.user, request=request, **data
        )
        return Response(SignatureRecordSerializer(signature).data)


PROVENANCE_FIELDS = set(Provenance.FIELDS)


class RecordingProvenanceApi(APIView):
    @extend_schema(
        summary="Set a recording's provenance",
        request=inline_serializer(
            "ProvenanceWrite",
            {
                "performer_name": serializers.CharField(),
                "performer_contact": serializers.CharField(),
                "recording_date": serializers.DateField(allow_null=True),
                "session_name": serializers.CharField(required=False),
                "studio": serializers.CharField(required=False),
                "annotator": serializers.CharField(required=False),
            },
        ),
        responses={200: ProvenanceRecordSerializer, **_ERRORS},
    )
    def put(self, request, uid: str):
        performer, recording = _own_recording(request, uid)
        data = _body(
            request,
            allowed=PROVENANCE_FIELDS,
            required={"performer_name", "performer_contact", "recording_date"},
        )
        raw_date = data.pop("recording_date")
        if raw_date in (None, ""):
            recording_date = None
        else:
            try:
                recording_date = date.fromisoformat(str(raw_date))
            except ValueError:
                raise _field_error("recording_date", "Give the date as YYYY-MM-DD.") from None
        provenance = services.provenance_save(
            recording=recording,
            by=performer.user,
            recording_date=recording_date,
            request=request,
            **data,
        )
        return Response(ProvenanceRecordSerializer(provenance).data)


CONSENT_FIELDS = {
    "allowed_uses",
    "sensitive_content",
    "sensitive_content_licensable",
    "signature_name",
    "consent_text_version",
}


class RecordingConsentApi(APIView):
    @extend_schema(
        summary="Give consent for a recording",
        description=(
            "Read the current text first (GET /api/v1/consent-text/) and send its version: "
            "a consent signed against an outdated version is refused with "
            "`consent_text_outdated`. The signature is the performer's full legal name."
        ),
        request=inline_serializer(
            "ConsentWrite",
            {
                "allowed_uses": serializers.ListField(child=serializers.CharField()),
                "sensitive_content": serializers.ListField(child=serializers.CharField()),
                "sensitive_content_licensable": serializers.BooleanField(),
                "signature_name": serializers.CharField(),
                "consent_text_version": serializers.CharField(),
            },
        ),
        responses={201: ConsentRecordSerializer, **_ERRORS},
    )
    def post(self, request, uid: str):
        performer, recording = _own_recording(request, uid)
        data = _body(request, allowed=CONSENT_FIELDS, required=CONSENT_FIELDS)
        consent = services.consent_give(
            recording=recording, by=performer.user, request=request, **data
        )
        return Response(ConsentRecordSerializer(consent).data, status=status.HTTP_201_CREATED)


class ConsentWithdrawnSerializer(ConsentRecordSerializer):
    unpublished_listings = serializers.SerializerMethodField(
        help_text="Listings this withdrawal took off sale."
    )

    class Meta(ConsentRecordSerializer.Meta):
        fields = [
            *ConsentRecordSerializer.Meta.fields,
            "withdrawn_at",
            "withdrawal_reason",
            "unpublished_listings",
        ]
        read_only_fields = fields

    def get_unpublished_listings(self, obj) -> list[int]:
        return self.context.get("unpublished_listings", [])


class RecordingConsentWithdrawApi(APIView):
    @extend_schema(
        summary="Withdraw consent for a recording",
        description=(
            "Takes effect at once: every listing offering the recording is unpublished in the "
            "same transaction, so no new sale can happen. Existing licenses are handled "
            "through a takedown request. Give consent again (POST …/consent/) to sell it again."
        ),
        request=inline_serializer(
            "ConsentWithdraw",
            {"reason": serializers.CharField(required=False, help_text="Up to 2,000 characters.")},
        ),
        responses={
            200: ConsentWithdrawnSerializer,
            **_ERRORS,
            409: OpenApiResponse(description="`no_active_consent`: nothing to withdraw."),
        },
    )
    def post(self, request, uid: str):
        performer, recording = _own_recording(request, uid)
        data = _body(request, allowed={"reason"})
        reason = data.get("reason", "")
        if not isinstance(reason, str):
            raise _field_error("reason", "Must be text.")
        if len(reason) > 2000:
            raise _field_error("reason", "At most 2,000 characters.")
        on_offer = selectors.listing_ids_on_offer_with(recording)
        consent = services.consent_withdraw(
            recording=recording, by=performer.user, reason=reason, request=request
        )
        return Response(
            ConsentWithdrawnSerializer(consent, context={"unpublished_listings": on_offer}).data
        )


class SplitSerializer(serializers.ModelSerializer):
    email = serializers.CharField(source="performer.user.email", read_only=True)
    stage_name = serializers.CharField(source="performer.stage_name", read_only=True)

    class Meta:
        model = RecordingSplit
        fields = ["email", "stage_name", "share_bps"]
        read_only_fields = fields


class RecordingSplitsSerializer(serializers.Serializer):
    recording = serializers.CharField()
    splits = SplitSerializer(many=True)
    total_bps = serializers.IntegerField()


def _split_shares(raw: object) -> list[tuple[PerformerProfile, object]]:
    """``[{"email": …, "share_bps": …}, …]`` as (profile, basis points); the
    basis points are checked by the service."""
    if isinstance(raw, str) or not isinstance(raw, list):
        raise _field_error("splits", 'Send a list of {"email": …, "share_bps": …} objects.')
    for number, item in enumerate(raw, start=1):
        if (
            not isinstance(item, dict)
            or set(item) != {"email", "share_bps"}
            or not isinstance(item["email"], str)
        ):
            raise _field_error(
                "splits",
                f'Row {number}: send exactly {{"email": "…", "share_bps": 5000}}.',
            )
    profiles = selectors.performers_by_email(item["email"] for item in raw)
    unknown = [item["email"] for item in raw if item["email"].strip().lower() not in profiles]
    if unknown:
        raise ValidationError(
            f"splits: no performer uses {', '.join(unknown)}. Co-performers need a Residuals "
            "performer profile first.",
            code="unknown_performer",
            details={
                "fields": {"splits": [f"No performer uses {e}." for e in unknown]},
                "emails": unknown,
            },
        )
    return [(profiles[item["email"].strip().lower()], item["share_bps"]) for item in raw]


class RecordingSplitsApi(APIView):
    @extend_schema(
        summary="Set who shares a recording's earnings",
        description=(
            "Replaces the recording's splits. Each co-performer is named by the email address "
            "of their Residuals account; shares are whole basis points (1–10,000) that must "
            "add up to exactly 10,000 (100%). Not while a published listing offers the "
            "recording: unpublish it first."
        ),
        request=inline_serializer(
            "SplitsWrite",
            {
                "splits": serializers.ListField(
                    child=inline_serializer(
                        "SplitWrite",
                        {
                            "email": serializers.EmailField(),
                            "share_bps": serializers.IntegerField(help_text="6000 = 60%"),
                        },
                    )
                )
            },
        ),
        responses={
            200: RecordingSplitsSerializer,
            400: OpenApiResponse(
                description="`splits_not_100_percent`, `invalid_share`, `duplicate_performer`, "
                "`unknown_performer`, `splits_empty` or `validation_error` (shape); "
                "`details.fields.splits` says what is wrong."
            ),
            401: _ERRORS[401],
            403: _ERRORS[403],
            404: _ERRORS[404],
            409: OpenApiResponse(
                description="`recording_listed`: a published listing offers the recording."
            ),
        },
    )
    def put(self, request, uid: str):
        performer, recording = _own_recording(request, uid)
        data = _body(request, allowed={"splits"}, required={"splits"})
        splits = services.splits_set(
            recording=recording,
            by=performer.user,
            shares=_split_shares(data["splits"]),
            request=request,
        )
        return Response(
            RecordingSplitsSerializer(
                {
                    "recording": recording.uid,
                    "splits": sorted(splits, key=lambda s: (-s.share_bps, s.performer_id)),
                    "total_bps": sum(s.share_bps for s in splits),
                }
            ).data
        )


class ConsentTextApi(APIView):
    """The consent wording in force. Public: anyone may read what performers sign."""

    permission_classes = [AllowAny]

    @extend_schema(
        summary="The current consent text",
        responses=inline_serializer(
            "ConsentText",
            {
                "version": serializers.CharField(),
                "body": serializers.CharField(),
                "sha256": serializers.CharField(),
                "published_at": serializers.DateTimeField(),
            },
        ),
    )
    def get(self, request):
        text = services.consent_text_current()
        return Response(
            {
                "version": text.version,
                "body": text.body,
                "sha256": text.sha256,
                "published_at": text.published_at,
            }
        )
