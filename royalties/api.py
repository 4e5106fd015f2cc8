"""Usage reporting API: POST /api/v1/usage-events/ and GET to list them."""

from __future__ import annotations

import json

from django.db.models import BooleanField, ExpressionWrapper
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import ParseError
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import BaseParser
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.selectors import principal_for
from core.errors import PermissionDenied, ValidationError
from royalties import watermark
from royalties.models import UsageEvent
from royalties.serializers import (
    IngestResponseSerializer,
    UsageEventInSerializer,
    UsageEventSerializer,
)
from royalties.usage import MAX_EVENTS_PER_REQUEST, usage_events_ingest


def _is_tallied() -> ExpressionWrapper:
    """Whether an event is at or below the tally's watermark, computed in
    the query that lists it."""
    return ExpressionWrapper(watermark.tallied_q(), output_field=BooleanField())


class RawJSONParser(BaseParser):
    """Parses JSON once, with the standard library, without DRF's extra
    passes: ingest is the hottest endpoint."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return json.loads(stream.read())
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"The body is not valid JSON: {exc}") from exc


def _organization_id(request) -> int:
    principal = principal_for(request.user, request.auth)
    if principal.api_key is not None:
        if principal.api_key.organization_id is None:
            raise PermissionDenied(
                "Usage is reported with an organization's API key.",
                code="organization_key_required",
            )
        return principal.api_key.organization_id
    organization = request.query_params.get("organization")
    ids = sorted(principal.organization_ids)
    if organization:
        from accounts.models import Organization

        match = (
            Organization.objects.filter(slug=organization, pk__in=ids)
            .values_list("pk", flat=True)
            .first()
        )
        if match is None:
            raise PermissionDenied(
                "You are not a member of that organization.", code="not_a_member"
            )
        return match
    if len(ids) != 1:
        raise ValidationError(
            "Name the organization: ?organization=<slug>.", code="organization_required"
        )
    return ids[0]


class UsageEventsPagination(CursorPagination):
    """An append-only log: pages follow a cursor, so a page costs the same
    at the millionth event as at the first (no count of the whole history)."""

    ordering = ("-received_at", "-id")
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


def _time_filter(params, name: str):
    value = parse_datetime(params[name]) if params.get(name) else None
    if params.get(name) and (value is None or value.tzinfo is None):
        raise ValidationError(
            f"{name} must be an ISO 8601 time with a time zone.",
            code="invalid_filter",
            details={"field": name},
        )
    return value


class UsageEventsApi(generics.ListAPIView):
    parser_classes = [RawJSONParser]
    serializer_class = UsageEventSerializer
    pagination_class = UsageEventsPagination

    @extend_schema(
        summary="Report usage",
        description=(
            "One event or a list of up to 1,000. Each event is judged on its own and the answer "
            "lists, in order, `accepted`, `duplicate` (same event_id, same body: harmless) or "
            "`rejected` with a stable code: invalid_event, license_not_found, "
            "license_not_active_at_time, reporting_window_closed, metric_not_permitted, "
            "currency_mismatch, amount_required, amount_not_allowed, occurred_in_future, "
            "adjustment_target_not_found, adjustment_mismatch, adjustment_exceeds_original, "
            "conflicting_duplicate. Accepted "
            "events are stored before the answer is sent."
        ),
        request=UsageEventInSerializer(many=True),
        responses={200: IngestResponseSerializer, 207: IngestResponseSerializer},
    )
    def post(self, request):
        organization_id = _organization_id(request)
        events = request.data
        if isinstance(events, dict):
            events = [events]
        if not isinstance(events, list) or not events:
            raise ValidationError(
                "Send one event object or a non-empty list of events.", code="invalid_body"
            )
        if len(events) > MAX_EVENTS_PER_REQUEST:
            raise ValidationError(
                f"At most {MAX_EVENTS_PER_REQUEST} events per request.", code="too_many_events"
            )
        prefix = request.auth.prefix if request.auth is not None else ""
        results = usage_events_ingest(
            organization_id=organization_id, events=events, api_key_prefix=prefix
        )
        counts = {"accepted": 0, "duplicate": 0, "rejected": 0}
        for result in results:
            counts[result.status] += 1
        body = {
            "accepted": counts["accepted"],
            "duplicates": counts["duplicate"],
            "rejected": counts["rejected"],
            "results": [r.as_dict() for r in results],
        }
        # 200 when nothing was rejected; 207 (multi-status) when some were.
        code = status.HTTP_207_MULTI_STATUS if counts["rejected"] else status.HTTP_200_OK
        return Response(body, status=code)

    @extend_schema(
        summary="List reported usage",
        parameters=[
            OpenApiParameter("license", str, description="license id (LIC-…) or number"),
            OpenApiParameter("metric", str),
            OpenApiParameter("since", str, description="received at or after (ISO 8601)"),
            OpenApiParameter("occurred_after", str, description="occurred at or after (ISO 8601)"),
            OpenApiParameter("occurred_before", str, description="occurred before (ISO 8601)"),
            OpenApiParameter("adjustments", bool, description="only corrections, or none"),
            OpenApiParameter("tallied", bool),
            OpenApiParameter("page_size", int, description="1 to 1,000 (default 100)"),
        ],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        organization_id = _organization_id(self.request)
        events = UsageEvent.objects.filter(organization_id=organization_id).select_related(
            "license", "adjusts"
        )
        params = self.request.query_params
        reference = params.get("license")
        if reference:  # as in reports: the license's id, or its number
            if reference.isdigit():
                events = events.filter(license_id=int(reference))
            else:
                events = events.filter(license__uid=reference)
        metric = params.get("metric")
        if metric:
            if metric not in UsageEvent.Metric.values:
                raise ValidationError(
                    f"metric must be one of {', '.join(UsageEvent.Metric.values)}.",
                    code="invalid_filter",
                    details={"field": "metric"},
                )
            events = events.filter(metric=metric)
        since = _time_filter(params, "since")
        if since is not None:
            events = events.filter(received_at__gte=since)
        after, before = (
            _time_filter(params, "occurred_after"),
            _time_filter(params, "occurred_before"),
        )
        if after is not None:
            events = events.filter(occurred_at__gte=after)
        if before is not None:
            events = events.filter(occurred_at__lt=before)
        for name in ("tallied", "adjustments"):
            if params.get(name) not in {None, "", "true", "false"}:
                raise ValidationError(
                    f"{name} must be true or false.",
                    code="invalid_filter",
                    details={"field": name},
                )
        if params.get("adjustments") in {"true", "false"}:
            events = events.filter(adjusts__isnull=params["adjustments"] == "false")
        if params.get("tallied") in {"true", "false"}:
            tallied = params["tallied"] == "true"
            events = events.filter(watermark.tallied_q() if tallied else watermark.untallied_q())
        return events.annotate(is_tallied=_is_tallied()).order_by("-received_at", "-id")


class UsageEventDetailApi(APIView):
    @extend_schema(responses=UsageEventSerializer, summary="One reported event")
    def get(self, request, event_id: str):
        organization_id = _organization_id(request)
        event = generics.get_object_or_404(
            UsageEvent.objects.select_related("license", "adjusts").annotate(
                is_tallied=_is_tallied()
            ),
            organization_id=organization_id,
            event_id=event_id,
        )
        return Response(UsageEventSerializer(event).data)
