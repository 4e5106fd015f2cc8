"""The public catalogue API: search listings for sale and read one. Anyone
may call it, signed in or not (API keys work too); it shows what the web
catalogue shows and never an original file."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.selectors_catalogue import (
    COUNT_EXACT_UP_TO,
    CURRENCIES,
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    MAX_RESULT_WINDOW,
    MEDIA_KINDS,
    SORTS,
    catalogue_listing,
    catalogue_search,
)
from marketplace.serializers_catalogue import (
    CatalogueListingSerializer,
    CataloguePageSerializer,
    listing_data,
    preview_url_template,
    site_of,
)
from marketplace.taxonomy import Authenticity, Emotion, Use

_ERROR = OpenApiResponse(
    description='`{"error": {"code": "invalid_filter", "message": "...", '
    '"details": {"fields": {"<parameter>": ["..."]}}}}`'
)


def _param(name, type_, description, **kwargs) -> OpenApiParameter:
    return OpenApiParameter(name, type_, OpenApiParameter.QUERY, description=description, **kwargs)


_SEARCH_PARAMETERS = [
    _param("q", str, "Free text over titles, descriptions, tags, emotions and stage names "
           '(English stemming; "quoted phrase", -exclude and `or` work).'),
    _param("emotion", str, "Primary emotion; repeat or comma-separate for any of several.",
           enum=Emotion.values, many=True, explode=True),
    _param("intensity_min", int, "Lowest intensity, 1–5."),
    _param("intensity_max", int, "Highest intensity, 1–5."),
    _param("authenticity", str, "Repeat or comma-separate for any of several.",
           enum=Authenticity.values, many=True, explode=True),
    _param("valence_min", float, "−1 (unpleasant) to 1 (pleasant)."),
    _param("valence_max", float, "−1 to 1."),
    _param("arousal_min", float, "0 (calm) to 1 (highly activated)."),
    _param("arousal_max", float, "0 to 1."),
    _param("language", str, "BCP 47 tag or prefix: `es` matches `es` and `es-mx`."),
    _param("performer", int, "A performer's id (`performer.id` in results)."),
    _param("duration_min", float, "Shortest recording, in seconds."),
    _param("duration_max", float, "Longest recording, in seconds."),
    _param("use", str, "Permitted use; several must ALL be permitted.",
           enum=Use.values, many=True, explode=True),
    _param("territory", str, "ISO 3166-1 alpha-2: listings licensed worldwide or there."),
    _param("price_min", int, "Lowest price in minor units (cents) of `currency`."),
    _param("price_max", int, "Highest price in minor units (cents) of `currency`."),
    _param("currency", str, "Currency of the price bounds (default USD when a bound is given); "
           "limits results to listings priced in it.", enum=list(CURRENCIES)),
    _param("media_kind", str, "audio or video.", enum=list(MEDIA_KINDS)),
    _param("sort", str, "relevance (default with q), newest (default otherwise), price_asc, "
           "price_desc, duration_asc, duration_desc, intensity_desc.", enum=list(SORTS)),
    _param("page", int, f"From 1. At most the first {MAX_RESULT_WINDOW:,} results are served."),
    _param("page_size", int, f"Default {DEFAULT_PAGE_SIZE}, at most {MAX_PAGE_SIZE}."),
]  # fmt: skip


def _page_link(request, page: int) -> str:
    params = request.query_params.copy()
    params["page"] = str(page)
    return request.build_absolute_uri(request.path + "?" + params.urlencode())


class CatalogueListApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        summary="Search the catalogue",
        operation_id="catalogue_search",
        description="Listings for sale. A listing (one recording or a pack) matches when at "
        "least one of its recordings matches every recording-level filter. `count` is exact "
        f"up to {COUNT_EXACT_UP_TO:,} listings; beyond, `count_exact` is false, `count` is "
        f"{COUNT_EXACT_UP_TO:,} and `num_pages` is null (follow `next`). Facets count "
        "matching listings per emotion and per authenticity, each with every other filter "
        "applied. Invalid values answer 400 with the code `invalid_filter`.",
        parameters=_SEARCH_PARAMETERS,
        responses={200: CataloguePageSerializer, 400: _ERROR},
        tags=["catalogue"],
    )
    def get(self, request):
        page = catalogue_search(request.query_params)
        query = page.query
        site = site_of(request)
        preview_template = preview_url_template(site)
        data = {
            "count": page.count,
            "count_exact": page.count_exact,
            "page": query.page,
            "page_size": query.page_size,
            "num_pages": page.num_pages,
            "next": _page_link(request, query.page + 1) if page.has_next else None,
            "previous": _page_link(request, query.page - 1) if page.has_previous else None,
            "sort": query.sort,
            "results": [
                listing_data(x, site, result=True, preview_template=preview_template)
                for x in page.listings
            ],
            "facets": page.facets,
        }
        return Response(data)


class CatalogueDetailApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        summary="One listing in the catalogue",
        operation_id="catalogue_listing",
        description="Published listings only; anything else is 404.",
        parameters=[
            OpenApiParameter("listing_id", OpenApiTypes.INT, OpenApiParameter.PATH),
        ],
        responses={
            200: CatalogueListingSerializer,
            404: OpenApiResponse(description="Not for sale."),
        },
        tags=["catalogue"],
    )
    def get(self, request, listing_id: int):
        listing = catalogue_listing(listing_id)
        return Response(listing_data(listing, site_of(request)))
