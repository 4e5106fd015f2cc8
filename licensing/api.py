"""Licensing API: an organization's licenses, download links, the Croissant
manifest, the signed certificate, deletion attestations and orders.

Callers are a person (session) acting for the organizations they belong
to, or an organization's API key; a performer's key is refused with
``organization_key_required``. Another organization's license or order is
404, so its ids reveal nothing."""

from __future__ import annotations

from django.db.models import Prefetch
from django.http import Http404, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.selectors import Principal, principal_for
from core.errors import PermissionDenied
from core.services import client_ip
from licensing import selectors
from licensing.archive import archive_filename, license_archive_prepare, license_archive_stream
from licensing.certificates import certificate_for
from licensing.croissant import manifest_for
from licensing.downloads import download_links_create
from licensing.lifecycle import attestation_submit
from licensing.models import License, LicenseItem, Order, OrderLine
from licensing.serializers import (
    AttestationInSerializer,
    AttestationSerializer,
    DownloadLinksInSerializer,
    DownloadLinksSerializer,
    LicenseSerializer,
    OrderSerializer,
)

ERRORS = {
    401: OpenApiResponse(description="Not signed in, or the API key is invalid or revoked."),
    403: OpenApiResponse(description="organization_key_required: a performer's key was used."),
    404: OpenApiResponse(description="No such license for the caller's organization."),
}


def api_principal(request) -> Principal:
    principal = principal_for(request.user, request.auth)
    if principal.api_key is not None and principal.api_key.organization_id is None:
        raise PermissionDenied(
            "Licenses are reached with an organization's API key, not a performer's.",
            code="organization_key_required",
        )
    return principal


def _licenses_query():
    return License.objects.select_related(
        "organization", "order_line__order", "attestation", "renewed_from", "renewed_by"
    ).prefetch_related(
        Prefetch("items", queryset=LicenseItem.objects.select_related("recording").order_by("id"))
    )


def _license(request, license_id: str) -> License:
    license = selectors.license_for(api_principal(request), license_id)
    return _licenses_query().get(pk=license.pk)


class JSONLDRenderer(JSONRenderer):
    media_type = "application/ld+json"
    format = "jsonld"


class ZipRenderer(BaseRenderer):
    """Lets a client ask for ``Accept: application/zip``; the archive itself
    is a streaming response that bypasses rendering."""

    media_type = "application/zip"
    format = "zip"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return JSONRenderer().render(data)


@extend_schema(
    summary="Licenses of my organization",
    parameters=[
        OpenApiParameter("organization", str, description="Organization slug (people in several)"),
        OpenApiParameter("status", str, enum=License.Status.values),
    ],
    responses={200: LicenseSerializer(many=True), 401: ERRORS[401], 403: ERRORS[403]},
)
class LicenseListApi(generics.ListAPIView):
    serializer_class = LicenseSerializer

    def get_queryset(self):
        principal = api_principal(self.request)
        licenses = _licenses_query().filter(organization_id__in=principal.organization_ids)
        params = self.request.query_params
        if params.get("organization"):
            licenses = licenses.filter(organization__slug=params["organization"])
        if params.get("status"):
            licenses = licenses.filter(status=params["status"])
        return licenses.order_by("-created_at", "-id")


class LicenseDetailApi(APIView):
    @extend_schema(
        summary="One license",
        description="`id` is the license id (LIC-…) or its number.",
        responses={200: LicenseSerializer, **ERRORS},
    )
    def get(self, request, license_id: str):
        return Response(LicenseSerializer(_license(request, license_id)).data)


class LicenseDownloadLinksApi(APIView):
    @extend_schema(
        summary="Short-lived download links",
        description=(
            "Signed links to the original files (all of them, or the recordings named), valid "
            "for 15 minutes. The license's status and end date, the recording's status and the "
            "key are checked again when a link is used. Errors: license_not_active (403), "
            "recording_unavailable (403), not_in_license (404)."
        ),
        request=DownloadLinksInSerializer,
        responses={201: DownloadLinksSerializer, **ERRORS},
    )
    def post(self, request, license_id: str):
        license = _license(request, license_id)
        data = DownloadLinksInSerializer(data=request.data or {})
        data.is_valid(raise_exception=True)
        links = download_links_create(
            license=license,
            principal=api_principal(request),
            recording_uids=data.validated_data.get("recordings"),
        )
        return Response(
            DownloadLinksSerializer({"links": links}).data, status=status.HTTP_201_CREATED
        )


class LicenseArchiveApi(APIView):
    renderer_classes = [JSONRenderer, ZipRenderer]

    @extend_schema(
        summary="Every file of the license, with its manifest and certificate, as one zip",
        description=(
            "Streamed: manifest.json (Croissant), certificate.json and files/<id>.<ext>. Every "
            "file is logged as a download. 403 license_not_active when the license is not active."
        ),
        responses={
            (200, "application/zip"): OpenApiResponse(
                response=OpenApiTypes.BINARY, description="The zip archive."
            ),
            **ERRORS,
        },
    )
    def get(self, request, license_id: str):
        license = _license(request, license_id)
        recordings, left_out = license_archive_prepare(license)
        api_key = request.auth
        response = StreamingHttpResponse(
            license_archive_stream(
                license=license,
                recordings=recordings,
                left_out=left_out,
                user_id=request.user.pk,
                api_key_prefix=api_key.prefix if api_key else "",
                ip=client_ip(request),
            ),
            content_type="application/zip",
        )
        response["Content-Disposition"] = f'attachment; filename="{archive_filename(license)}"'
        response["Cache-Control"] = "private, no-store"
        return response


class LicenseManifestApi(APIView):
    renderer_classes = [JSONLDRenderer, JSONRenderer]

    @extend_schema(
        summary="Provenance manifest (MLCommons Croissant 1.0 JSON-LD)",
        description=(
            "The dataset under this license: each file with its SHA-256, emotional signature, "
            "provenance, consent scope and the license terms, plus Croissant's Responsible-AI "
            "fields for data collection, consent and personal or sensitive information."
        ),
        responses={(200, "application/ld+json"): OpenApiTypes.OBJECT, **ERRORS},
    )
    def get(self, request, license_id: str):
        return Response(manifest_for(_license(request, license_id)))


class LicenseCertificateApi(APIView):
    @extend_schema(
        summary="Signed license certificate",
        description=(
            "JSON signed with the platform's Ed25519 key (`signature.value`, base64url, over "
            "the canonical JSON of `certificate`). Verify it against "
            "/.well-known/residuals-license-key.json, e.g. with scripts/verify_certificate.py."
        ),
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
    )
    def get(self, request, license_id: str):
        return Response(certificate_for(_license(request, license_id)))


class LicenseDeletionAttestationApi(APIView):
    @extend_schema(
        summary="Attest deletion after the license ended",
        description=(
            "Errors: 409 attestation_not_requested (the license has not ended, been revoked "
            "or been refunded), 409 attestation_already_submitted, 409 attestation_superseded "
            "(a renewal licenses the files again), 400 validation_error with `details.fields`."
        ),
        request=AttestationInSerializer,
        responses={
            201: AttestationSerializer,
            400: OpenApiResponse(description="validation_error"),
            409: OpenApiResponse(
                description="attestation_not_requested, attestation_already_submitted or "
                "attestation_superseded"
            ),
            **ERRORS,
        },
    )
    def post(self, request, license_id: str):
        license = _license(request, license_id)
        data = AttestationInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        attestation = attestation_submit(
            license=license,
            by=request.user,
            api_key=request.auth,
            request=request,
            **data.validated_data,
        )
        return Response(AttestationSerializer(attestation).data, status=status.HTTP_201_CREATED)


def _orders_query():
    return Order.objects.select_related("organization").prefetch_related(
        Prefetch(
            "lines", queryset=OrderLine.objects.select_related("license", "renews").order_by("id")
        )
    )


@extend_schema(
    summary="Orders of my organization",
    parameters=[OpenApiParameter("organization", str)],
    responses={200: OrderSerializer(many=True), 401: ERRORS[401], 403: ERRORS[403]},
)
class OrderListApi(generics.ListAPIView):
    serializer_class = OrderSerializer

    def get_queryset(self):
        principal = api_principal(self.request)
        orders = _orders_query().filter(organization_id__in=principal.organization_ids)
        if self.request.query_params.get("organization"):
            orders = orders.filter(organization__slug=self.request.query_params["organization"])
        return orders.order_by("-created_at", "-id")


class OrderDetailApi(APIView):
    @extend_schema(summary="One order", responses={200: OrderSerializer, **ERRORS})
    def get(self, request, number: str):
        principal = api_principal(request)
        order = (
            _orders_query()
            .filter(number=number, organization_id__in=principal.organization_ids)
            .first()
        )
        if order is None:
            raise Http404("No such order.")
        return Response(OrderSerializer(order).data)
