"""GET /api/v1/licenses/{id}/usage/: a license's usage, aggregated.

Seen by the buyer organization (a member's session or the organization's API
key), by the performers the license pays (their session or their performer
API key) and by staff (a session that passed a second factor). Only totals
per metric leave here — never event ids, notes or model names, which are the
buyer's business. Anyone else gets 404, exactly as for a license that does
not exist, so license ids reveal nothing."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.middleware import session_passed_mfa
from accounts.selectors import Principal, principal_for
from core.errors import ValidationError
from licensing.models import License
from royalties import reports


def license_for_usage_viewer(principal: Principal, request, license_ref: str) -> License:
    lookup = {"uid": license_ref} if license_ref.startswith("LIC-") else {"pk": license_ref}
    if "pk" in lookup and not license_ref.isdigit():
        raise Http404("No such license.")
    license = License.objects.select_related("organization").filter(**lookup).first()
    if license is None:
        raise Http404("No such license.")
    if principal.can_act_for(license.organization_id):
        return license
    if principal.performer is not None and principal.performer.pk in (
        reports.license_performer_ids(license.terms)
    ):
        return license
    # Staff powers need a person at a browser whose session passed a second
    # factor, as on the staff pages (never a machine key).
    if principal.is_staff and session_passed_mfa(request):
        return license
    raise Http404("No such license.")


class MetricTotalSerializer(serializers.Serializer):
    metric = serializers.CharField()
    events = serializers.IntegerField()
    quantity = serializers.IntegerField()
    amount_minor = serializers.IntegerField(
        allow_null=True, help_text="Revenue reported (downstream_revenue only)"
    )
    royalty_minor = serializers.IntegerField(help_text="Royalties accrued on this metric")


class LicenseUsageSerializer(serializers.Serializer):
    license = serializers.CharField(source="license.uid")
    currency = serializers.CharField(source="license.currency")
    month = serializers.SerializerMethodField()
    events = serializers.IntegerField()
    untallied_events = serializers.IntegerField()
    revenue_reported_minor = serializers.IntegerField(source="revenue_minor")
    royalties_accrued_minor = serializers.IntegerField(source="royalty_minor")
    metrics = MetricTotalSerializer(many=True)

    def get_month(self, summary) -> str | None:
        return summary.period.strftime("%Y-%m") if summary.period else None


class LicenseUsageApi(APIView):
    @extend_schema(
        summary="A license's usage, aggregated",
        description=(
            "Totals per metric of the usage reported under the license (every accepted event, "
            "corrections included), the downstream revenue reported and the royalties accrued. "
            "For the buyer organization, the performers the license pays, and staff. Amounts "
            "are in minor units of the license's currency. With `month=YYYY-MM`, usage that "
            "happened in that month (UTC) and royalties accrued in it. Anyone else gets 404."
        ),
        parameters=[OpenApiParameter("month", str, description="YYYY-MM (UTC)")],
        responses={
            200: LicenseUsageSerializer,
            401: OpenApiResponse(description="Not signed in, or the API key is invalid."),
            404: OpenApiResponse(description="No such license that you may see."),
        },
    )
    def get(self, request, license_id: str):
        principal = principal_for(request.user, request.auth)
        license = license_for_usage_viewer(principal, request, license_id)
        period = None
        if request.query_params.get("month"):
            period = reports.parse_month(request.query_params["month"])
            if period is None:
                raise ValidationError("month must look like 2026-11.", code="invalid_filter")
        summary = reports.license_usage_summary(license=license, period=period)
        return Response(LicenseUsageSerializer(summary).data)
