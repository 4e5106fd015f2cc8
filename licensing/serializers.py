"""What the licensing API shows. Read-only shapes; writes go through services."""

from __future__ import annotations

import math

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from licensing.models import DeletionAttestation, License, Order, OrderLine
from marketplace.models import Recording


class LicenseFileSerializer(serializers.Serializer):
    recording = serializers.CharField(source="recording.uid")
    title = serializers.CharField(source="recording.title")
    sha256 = serializers.CharField()
    size_bytes = serializers.IntegerField(source="recording.size_bytes")
    media_type = serializers.CharField(source="recording.mime_type")
    path = serializers.SerializerMethodField(help_text="Path inside the license's zip archive.")
    available = serializers.SerializerMethodField(
        help_text="False while the recording is suspended or removed."
    )

    def get_path(self, item) -> str:
        return f"files/{item.recording.uid}.{item.recording.container}"

    def get_available(self, item) -> bool:
        return item.recording.status == Recording.Status.ACTIVE


class AttestationSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeletionAttestation
        fields = [
            "status",
            "reason",
            "requested_at",
            "due_at",
            "submitted_at",
            "signer_name",
            "signer_title",
            "statement",
            "systems",
        ]


class AttestationInSerializer(serializers.Serializer):
    signer_name = serializers.CharField(
        max_length=200, required=False, allow_blank=True, default=""
    )
    signer_title = serializers.CharField(
        max_length=200, required=False, allow_blank=True, default=""
    )
    statement = serializers.CharField(
        max_length=5000,
        required=False,
        allow_blank=True,
        default="",
        help_text="What was deleted, and when (at least 20 characters).",
    )
    systems = serializers.CharField(
        max_length=5000,
        required=False,
        allow_blank=True,
        default="",
        help_text="Where copies were held and how each was purged.",
    )


def _absolute(path: str) -> str:
    return settings.SITE_URL + path


class LicenseSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="uid", read_only=True)
    organization = serializers.CharField(source="organization.slug", read_only=True)
    listing = serializers.SerializerMethodField()
    days_left = serializers.SerializerMethodField(
        help_text="Whole days until the end (rounded up); null once ended."
    )
    order = serializers.CharField(source="order_line.order.number", read_only=True)
    files = LicenseFileSerializer(source="items", many=True, read_only=True)
    attestation = serializers.SerializerMethodField()
    renewed_from = serializers.CharField(source="renewed_from.uid", default=None, read_only=True)
    renewed_by = serializers.SerializerMethodField()
    links = serializers.SerializerMethodField()

    class Meta:
        model = License
        fields = [
            "id",
            "organization",
            "listing",
            "status",
            "status_reason",
            "starts_at",
            "ends_at",
            "days_left",
            "price_minor",
            "currency",
            "terms",
            "order",
            "files",
            "attestation",
            "renewed_from",
            "renewed_by",
            "links",
        ]

    @extend_schema_field(
        {
            "type": "object",
            "properties": {"id": {"type": "integer"}, "title": {"type": "string"}},
        }
    )
    def get_listing(self, license) -> dict:
        return {"id": license.listing_id, "title": license.terms["listing_title"]}

    def get_days_left(self, license) -> int | None:
        now = timezone.now()
        if license.ends_at <= now:
            return None
        return math.ceil((license.ends_at - now).total_seconds() / 86400)

    @extend_schema_field(AttestationSerializer(allow_null=True))
    def get_attestation(self, license):
        attestation = getattr(license, "attestation", None)
        return AttestationSerializer(attestation).data if attestation else None

    def get_renewed_by(self, license) -> str | None:
        renewal = getattr(license, "renewed_by", None)
        return renewal.uid if renewal else None

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_links(self, license) -> dict:
        uid = license.uid
        return {
            "self": _absolute(reverse("api:license-detail", args=[uid])),
            "download_links": _absolute(reverse("api:license-download-links", args=[uid])),
            "archive": _absolute(reverse("api:license-archive", args=[uid])),
            "manifest": _absolute(reverse("api:license-manifest", args=[uid])),
            "certificate": _absolute(reverse("api:license-certificate", args=[uid])),
            "deletion_attestation": _absolute(
                reverse("api:license-deletion-attestation", args=[uid])
            ),
            "web": _absolute(
                reverse("buyer_license_detail", args=[license.organization.slug, uid])
            ),
        }


class DownloadLinksInSerializer(serializers.Serializer):
    recordings = serializers.ListField(
        child=serializers.CharField(max_length=20),
        required=False,
        allow_empty=False,
        max_length=500,
        help_text="Recording ids (REC-…); leave out for every file of the license.",
    )


class DownloadLinkSerializer(serializers.Serializer):
    recording = serializers.CharField(source="recording_uid")
    url = serializers.URLField()
    expires_at = serializers.DateTimeField()


class DownloadLinksSerializer(serializers.Serializer):
    links = DownloadLinkSerializer(many=True)


class OrderLineSerializer(serializers.ModelSerializer):
    listing = serializers.IntegerField(source="listing_id")
    license = serializers.SerializerMethodField()
    renews = serializers.CharField(source="renews.uid", default=None)

    class Meta:
        model = OrderLine
        fields = ["title", "listing", "price_minor", "currency", "license", "renews"]

    def get_license(self, line) -> str | None:
        license = getattr(line, "license", None)
        return license.uid if license else None


class OrderSerializer(serializers.ModelSerializer):
    organization = serializers.CharField(source="organization.slug")
    status_label = serializers.CharField(source="get_status_display")
    lines = OrderLineSerializer(many=True)
    receipt_url = serializers.SerializerMethodField()

    class Meta:
        model = Order
        fields = [
            "number",
            "organization",
            "status",
            "status_label",
            "status_reason",
            "currency",
            "total_minor",
            "refunded_minor",
            "simulated",
            "created_at",
            "paid_at",
            "receipt_sent_at",
            "lines",
            "receipt_url",
        ]

    def get_receipt_url(self, order) -> str:
        return _absolute(
            reverse("buyer_order_detail", args=[order.organization.slug, order.number])
        )
