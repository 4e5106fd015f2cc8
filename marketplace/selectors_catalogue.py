"""Reads for the buyer-facing catalogue: search with filters, facets, sorting
and pagination; one published listing; the recording behind a preview.

What is for sale is decided in one place: ``CatalogueEntry`` rows, rebuilt by
``marketplace.services.catalogue_refresh_listing``. A listing with no rows
(draft, in review, rejected, unpublished, or a recording whose consent was
withdrawn, or suspended by staff) does not exist as far as buyers are
concerned.

How a search stays fast at 100,000 recordings (``bench/catalogue.py``):
the page is read in index order and stops after the page
(``_page_from_rows``); the count stops at ``COUNT_EXACT_UP_TO`` using
covering indexes, and comes back in the same statement as the page; facet
counts are cached per catalogue generation; the page's listings, recordings
and signatures come in one query. On PostgreSQL the filters are compiled by
Django once (``_where``) and the three statements of a search are written
around them by hand, and the page is built from plain rows with its JSON
decoded in one call: queryset building, model-level conversion and one
``json.loads`` per value cost more than the database work for most searches.

Results are LISTINGS. A listing matches when at least one of its recordings
matches every recording-level filter at once: all conditions are applied to
the same ``CatalogueEntry`` row, so a pack never matches because one of its
recordings satisfies one filter and another recording the next. Listing-level
terms (price, uses, territory) are copied onto every row, so they filter the
same rows.

Parameters (web and ``GET /api/v1/catalogue/`` share them):

``emotion``, ``authenticity``, ``use``
    one or several codes, repeated (``emotion=grief&emotion=anger``) or
    comma-separated (``emotion=grief,anger``). Several emotions or
    authenticities match any of them; several uses must ALL be permitted.
``intensity_min``/``intensity_max`` (1–5), ``valence_min``/``valence_max``
(−1..1), ``arousal_min``/``arousal_max`` (0..1), ``duration_min``/
``duration_max`` (seconds)
    inclusive ranges.
``language``
    a BCP 47 tag or prefix: ``es`` matches ``es`` and ``es-mx``, not ``et``.
``performer``
    the performer's numeric id (``PerformerProfile.pk``, shown in every
    result as ``performer.id``). Stage names are not unique, so they are
    searched through ``q`` instead.
``territory``
    an ISO 3166-1 alpha-2 code: listings licensed worldwide or in that country.
``price_min``/``price_max``
    integer minor units (cents) in ``currency`` (default USD). Giving a price
    bound or a currency limits results to listings priced in that currency.
    The web form sends ``price_from``/``price_to`` in major units instead.
``media_kind``
    ``audio`` or ``video``.
``q``
    free text: on PostgreSQL ``websearch_to_tsquery('english', q)`` (English
    stemming, ``"quoted phrases"``, ``-exclusions``, ``or``) against the
    stored ``to_tsvector('english', search_document)`` column and its GIN
    index (migration 0003); elsewhere (SQLite) every word must occur.
``sort``
    ``relevance`` (the default when ``q`` is given), ``newest`` (otherwise the
    default), ``price_asc``, ``price_desc``, ``duration_asc`` (by the shortest
    matching recording), ``duration_desc`` (by the longest), ``intensity_desc``
    (by the most intense matching recording). Ties go to the newer listing.
    Price sorts compare amounts in minor units whatever the currency; add
    ``currency`` for a strict price order.
``page`` (from 1), ``page_size`` (default 20, at most 100)
    at most the first 10,000 results are served; narrow the search for more.
    The count is exact up to 1,000 listings (always, when ranking by
    relevance); beyond, it is a lower bound and ``count_exact`` is false.

Any invalid value raises ``core.errors.ValidationError`` with the code
``invalid_filter`` and ``details["fields"]`` naming every bad parameter.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from django.core.cache import cache
from django.core.exceptions import EmptyResultSet, FullResultSet
from django.db import connection
from django.db.models import (
    BooleanField,
    Count,
    Exists,
    F,
    Func,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Value,
)
from django.utils.translation import get_language

from core.errors import NotFound, ValidationError
from marketplace.models import (
    CatalogueEntry,
    EmotionalSignature,
    Listing,
    ListingItem,
    Recording,
)
from marketplace.taxonomy import Annotator, Authenticity, Emotion, Metric, Use
from marketplace.templatetags.money import format_money

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
# Deep OFFSETs cost the database more than they serve anyone; past this,
# narrowing the search is the answer (as search engines do).
MAX_RESULT_WINDOW = 10_000
# Counting every match of a broad search costs more than finding the page;
# past this many listings the count says "at least" (as search engines do).
COUNT_EXACT_UP_TO = 1_000
FACETS_CACHE_SECONDS = 600
DEFAULT_CURRENCY = "USD"
CURRENCIES = ("USD", "EUR", "GBP", "CAD", "AUD")
MAX_QUERY_LENGTH = 200

SORTS = {
    "relevance": "Best match",
    "newest": "Newest",
    "price_asc": "Price, low to high",
    "price_desc": "Price, high to low",
    "duration_asc": "Duration, shortest first",
    "duration_desc": "Duration, longest first",
    "intensity_desc": "Most intense first",
}
MEDIA_KINDS = {"audio": "Audio", "video": "Video"}

# A Use code → the CatalogueEntry column that says whether it is permitted.
USE_COLUMNS = {use.value: f"use_{use.value}" for use in Use}
_USE_LABELS = dict(Use.choices)

_LANGUAGE = re.compile(r"^[a-z]{2,8}(-[a-z0-9]{1,8})*$")
_TS_CONFIG = "'english'::regconfig"


class InvalidFilter(ValidationError):
    code = "invalid_filter"


# --- Parameters ----------------------------------------------------------------


@dataclass(frozen=True)
class CatalogueQuery:
    """A validated catalogue search. Build it with ``catalogue_query_clean``."""

    emotions: tuple[str, ...] = ()
    intensity_min: int | None = None
    intensity_max: int | None = None
    authenticity: tuple[str, ...] = ()
    valence_min: float | None = None
    valence_max: float | None = None
    arousal_min: float | None = None
    arousal_max: float | None = None
    language: str = ""
    performer: int | None = None
    duration_min: float | None = None
    duration_max: float | None = None
    uses: tuple[str, ...] = ()
    territory: str = ""
    price_min: int | None = None
    price_max: int | None = None
    currency: str = ""  # "" = any currency (no price bound given)
    media_kind: str = ""
    q: str = ""
    sort: str = "newest"
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


def _values(params: Mapping[str, Any], name: str) -> list[str]:
    """Every value of a multi-valued parameter, repeated or comma-separated."""
    if hasattr(params, "getlist"):
        raw = params.getlist(name)
    else:
        raw = params.get(name, [])
        raw = [raw] if isinstance(raw, str | int | float) else list(raw or [])
    out: list[str] = []
    for item in raw:
        for part in str(item).split(","):
            part = part.strip()
            if part and part not in out:
                out.append(part)
    return out


def _value(params: Mapping[str, Any], name: str) -> str:
    value = params.get(name)
    if isinstance(value, list | tuple):
        value = value[-1] if value else None
    return "" if value is None else str(value).strip()


class _Cleaner:
    def __init__(self, params: Mapping[str, Any]) -> None:
        self.params = params
        self.errors: dict[str, list[str]] = {}

    def fail(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)

    def choices(self, name: str, allowed: Iterable[str]) -> tuple[str, ...]:
        allowed = list(allowed)
        values = [v.lower() for v in _values(self.params, name)]
        unknown = [v for v in values if v not in allowed]
        if unknown:
            self.fail(
                name,
                f"Unknown value{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}. "
                f"Use one of: {', '.join(allowed)}.",
            )
            return ()
        return tuple(dict.fromkeys(values))

    def number(self, name: str, low: float, high: float, *, integer: bool = False):
        raw = _value(self.params, name)
        if raw == "":
            return None
        try:
            value: float = int(raw) if integer else float(raw)
        except ValueError:
            kind = "a whole number" if integer else "a number"
            self.fail(name, f"“{raw}” is not {kind}.")
            return None
        if not math.isfinite(value) or not low <= value <= high:
            self.fail(name, f"Must be from {low:g} to {high:g}.")
            return None
        return value

    def ordered(self, low_name: str, low, high_name: str, high) -> None:
        if low is not None and high is not None and low > high:
            self.fail(low_name, f"{low_name} ({low:g}) is greater than {high_name} ({high:g}).")


def catalogue_query_clean(params: Mapping[str, Any]) -> CatalogueQuery:
    """Validate search parameters (a QueryDict or a plain dict). Unknown
    parameter names are ignored; every bad value is reported at once."""
    from django_countries import countries

    from marketplace.templatetags.money import major_to_minor

    c = _Cleaner(params)
    emotions = c.choices("emotion", Emotion.values)
    authenticity = c.choices("authenticity", Authenticity.values)
    uses = c.choices("use", Use.values)

    intensity_min = c.number("intensity_min", 1, 5, integer=True)
    intensity_max = c.number("intensity_max", 1, 5, integer=True)
    c.ordered("intensity_min", intensity_min, "intensity_max", intensity_max)
    valence_min = c.number("valence_min", -1, 1)
    valence_max = c.number("valence_max", -1, 1)
    c.ordered("valence_min", valence_min, "valence_max", valence_max)
    arousal_min = c.number("arousal_min", 0, 1)
    arousal_max = c.number("arousal_max", 0, 1)
    c.ordered("arousal_min", arousal_min, "arousal_max", arousal_max)
    duration_min = c.number("duration_min", 0, 86_400)
    duration_max = c.number("duration_max", 0, 86_400)
    c.ordered("duration_min", duration_min, "duration_max", duration_max)

    language = _value(params, "language").lower().replace("_", "-")
    if language and not _LANGUAGE.match(language):
        c.fail("language", f"“{language}” is not a BCP 47 language tag (e.g. en, es-mx).")
        language = ""

    performer = c.number("performer", 1, 2**63 - 1, integer=True)

    territory = _value(params, "territory").upper()
    if territory and territory not in dict(countries):
        c.fail("territory", f"“{territory}” is not an ISO 3166 country code (e.g. US, DE).")
        territory = ""

    media_kind = _value(params, "media_kind").lower()
    if media_kind and media_kind not in MEDIA_KINDS:
        c.fail("media_kind", "Use audio or video.")
        media_kind = ""

    currency = _value(params, "currency").upper()
    if currency and currency not in CURRENCIES:
        c.fail("currency", f"Use one of: {', '.join(CURRENCIES)}.")
        currency = ""
    price_min = c.number("price_min", 0, 10**13, integer=True)
    price_max = c.number("price_max", 0, 10**13, integer=True)
    low_name, high_name = "price_min", "price_max"
    # The web form takes prices in major units ("500" means $500.00).
    for name in ("price_from", "price_to"):
        raw = _value(params, name)
        if raw == "":
            continue
        try:
            minor = major_to_minor(raw, currency or DEFAULT_CURRENCY)
        except ValueError as exc:
            c.fail(name, str(exc))
            continue
        if not 0 <= minor <= 10**13:
            c.fail(name, "Must be zero or more.")
        elif name == "price_from":
            price_min, low_name = minor, name
        else:
            price_max, high_name = minor, name
    c.ordered(low_name, price_min, high_name, price_max)
    if (price_min is not None or price_max is not None) and not currency:
        currency = DEFAULT_CURRENCY

    q = " ".join(_value(params, "q").split())
    if len(q) > MAX_QUERY_LENGTH:
        c.fail("q", f"At most {MAX_QUERY_LENGTH} characters.")
        q = ""

    sort = _value(params, "sort").lower() or ("relevance" if q else "newest")
    if sort not in SORTS:
        c.fail("sort", f"Use one of: {', '.join(SORTS)}.")
        sort = "newest"
    elif sort == "relevance" and not q:
        sort = "newest"  # nothing to be relevant to

    page = c.number("page", 1, 10**9, integer=True) or 1
    page_size = c.number("page_size", 1, MAX_PAGE_SIZE, integer=True) or DEFAULT_PAGE_SIZE
    if (page - 1) * page_size >= MAX_RESULT_WINDOW:
        c.fail(
            "page",
            f"Only the first {MAX_RESULT_WINDOW:,} results can be paged through; "
            "narrow the search with more filters.",
        )

    if c.errors:
        summary = "; ".join(f"{name}: {msgs[0]}" for name, msgs in c.errors.items())
        raise InvalidFilter(
            f"Invalid search filter — {summary}",
            code="invalid_filter",
            details={"fields": c.errors},
        )
    return CatalogueQuery(
        emotions=emotions,
        intensity_min=intensity_min,
        intensity_max=intensity_max,
        authenticity=authenticity,
        valence_min=valence_min,
        valence_max=valence_max,
        arousal_min=arousal_min,
        arousal_max=arousal_max,
        language=language,
        performer=performer,
        duration_min=duration_min,
        duration_max=duration_max,
        uses=uses,
        territory=territory,
        price_min=price_min,
        price_max=price_max,
        currency=currency,
        media_kind=media_kind,
        q=q,
        sort=sort,
        page=page,
        page_size=page_size,
    )


# --- Full text -------------------------------------------------------------------


def _vector_sql(compiler, document) -> tuple[str, tuple]:
    """The row's stored tsvector (migration 0003): ``to_tsvector('english',
    search_document)`` computed once by PostgreSQL and indexed with GIN. The
    model does not declare the column, so its reference is derived from
    search_document's, under whatever alias the query gives the table."""
    sql, params = compiler.compile(document)
    suffix = '"search_document"'
    if not sql.endswith(suffix):
        raise ValueError(f"Expected a reference to search_document, got {sql}")
    return sql[: -len(suffix)] + '"search_vector"', tuple(params)


class _TextMatch(Func):
    """``search_vector @@ websearch_to_tsquery('english', q)``, answered by
    the GIN index on the stored vector. Arguments: F("search_document"), q."""

    output_field = BooleanField()
    conditional = True

    def as_sql(self, compiler, connection, **extra):
        vector_sql, vector_params = _vector_sql(compiler, self.source_expressions[0])
        q_sql, q_params = compiler.compile(self.source_expressions[1])
        return (
            f"{vector_sql} @@ websearch_to_tsquery({_TS_CONFIG}, {q_sql})",
            (*vector_params, *q_params),
        )


def _fulltext() -> bool:
    return connection.vendor == "postgresql"


def _words(q: str) -> list[str]:
    """The fallback (SQLite): plain words, without websearch operators."""
    words = re.findall(r"[\w'-]+", q.lower())
    return [w.strip("-'") for w in words if w.strip("-'") and w not in {"or", "and"}]


# --- Search --------------------------------------------------------------------------


def _matching_entries(
    query: CatalogueQuery, *, skip: frozenset[str] = frozenset()
) -> QuerySet[CatalogueEntry]:
    """Catalogue rows that satisfy every filter (but those named in ``skip``,
    for facet counts). One row stands for one recording in one listing."""
    entries = CatalogueEntry.objects.all()
    conditions = Q()
    if query.emotions and "emotion" not in skip:
        conditions &= Q(primary_emotion__in=query.emotions)
    if query.authenticity and "authenticity" not in skip:
        conditions &= Q(authenticity__in=query.authenticity)
    if query.intensity_min is not None:
        conditions &= Q(intensity__gte=query.intensity_min)
    if query.intensity_max is not None:
        conditions &= Q(intensity__lte=query.intensity_max)
    if query.valence_min is not None:
        conditions &= Q(valence__gte=query.valence_min)
    if query.valence_max is not None:
        conditions &= Q(valence__lte=query.valence_max)
    if query.arousal_min is not None:
        conditions &= Q(arousal__gte=query.arousal_min)
    if query.arousal_max is not None:
        conditions &= Q(arousal__lte=query.arousal_max)
    if query.duration_min is not None:
        conditions &= Q(duration_seconds__gte=query.duration_min)
    if query.duration_max is not None:
        conditions &= Q(duration_seconds__lte=query.duration_max)
    if query.language:
        conditions &= Q(language=query.language) | Q(language__startswith=query.language + "-")
    if query.performer is not None:
        conditions &= Q(performer_id=query.performer)
    if query.media_kind:
        conditions &= Q(media_kind=query.media_kind)
    for use in query.uses:
        conditions &= Q(**{USE_COLUMNS[use]: True})
    if query.territory:
        conditions &= Q(worldwide=True) | Q(territories__contains=f"|{query.territory}|")
    if query.currency:
        conditions &= Q(currency=query.currency)
    if query.price_min is not None:
        conditions &= Q(price_minor__gte=query.price_min)
    if query.price_max is not None:
        conditions &= Q(price_minor__lte=query.price_max)
    entries = entries.filter(conditions)
    if query.q:
        if _fulltext():
            entries = entries.filter(_TextMatch(F("search_document"), Value(query.q)))
        else:
            for word in _words(query.q):
                entries = entries.filter(search_document__icontains=word)
    return entries


def _sort_key(query: CatalogueQuery):
    """(per-row key, aggregate over a listing's matching rows, descending).
    A listing sorts by the aggregate of its matching rows; ties go to the
    newer listing (higher id)."""
    if query.sort == "price_asc":
        return F("price_minor"), Min("price_minor"), False
    if query.sort == "price_desc":
        return F("price_minor"), Max("price_minor"), True
    if query.sort == "duration_asc":
        return F("duration_seconds"), Min("duration_seconds"), False
    if query.sort == "duration_desc":
        return F("duration_seconds"), Max("duration_seconds"), True
    if query.sort == "intensity_desc":
        return F("intensity"), Max("intensity"), True
    # Newest, and relevance where there is no full-text ranking (SQLite);
    # relevance on PostgreSQL is _relevance_head.
    return F("published_at"), Max("published_at"), True


_SLACK_ROWS = 20  # rows read beyond the page, for packs' extra rows
_GENERATION_SQL = "SELECT n FROM marketplace_catalogue_generation WHERE id = 1"
_TABLE = f'"{CatalogueEntry._meta.db_table}"'
# Sort → (CatalogueEntry column of the per-row key, descending). Same keys as
# _sort_key, which the ORM paths use.
_SORT_COLUMNS = {
    "price_asc": ("price_minor", False),
    "price_desc": ("price_minor", True),
    "duration_asc": ("duration_seconds", False),
    "duration_desc": ("duration_seconds", True),
    "intensity_desc": ("intensity", True),
}
_NEWEST = ("published_at", True)


def _where(entries: QuerySet[CatalogueEntry]) -> tuple[str, list]:
    """The WHERE clause Django compiles for these catalogue rows, as SQL with
    placeholders and its parameters. Its columns are qualified with the table's
    own name, so it can be used in any statement over that table (unaliased),
    including a subquery correlated to other tables.

    The filters themselves stay in ``_matching_entries`` (one definition for
    PostgreSQL and SQLite, and for the facets); the hot statements around
    them are written here by hand: building each one as a queryset and
    compiling it cost more than running it for the cheap searches."""
    query = entries.query
    compiler = query.get_compiler(connection=connection)
    try:
        sql, params = compiler.compile(query.where)
    except FullResultSet:
        return "TRUE", []
    except EmptyResultSet:
        return "FALSE", []
    return (sql or "TRUE"), list(params)


def _window(query: CatalogueQuery) -> tuple[int, int]:
    """(listings wanted: the page, those before it and one to say "more";
    rows to read for them, see _page_from_rows)."""
    need = query.offset + query.page_size + 1
    return need, need + need // 4 + _SLACK_ROWS


def _page_from_rows(
    entries: QuerySet[CatalogueEntry], query: CatalogueQuery, rows: list[int]
) -> tuple[list[int], bool]:
    """The page's listing ids in order, and whether more follow.

    Rows come in sort order and a listing is placed where its first row
    appears. For a descending key that first row holds the listing's highest
    key among its matching rows (lowest, ascending), so this order is exactly
    "by the aggregate, then newest listing" — and an index on the sort column
    answers it by reading little more than the page. Packs make several rows
    per listing; if the rows read do not hold enough distinct listings, the
    exact GROUP BY query answers instead."""
    need, limit = _window(query)
    ids = list(dict.fromkeys(rows))
    if len(ids) < need and len(rows) == limit:
        _, aggregate, descending = _sort_key(query)
        order = F("sort_key").desc() if descending else F("sort_key").asc()
        tail = list(
            entries.values("listing_id")
            .annotate(sort_key=aggregate)
            .order_by(order, "-listing_id")
            .values_list("listing_id", flat=True)[query.offset : need]
        )
        return tail[: query.page_size], len(tail) > query.page_size
    page = ids[query.offset : query.offset + query.page_size]
    return page, len(ids) > query.offset + query.page_size


def _count_rows(entries: QuerySet[CatalogueEntry]) -> QuerySet:
    """Distinct listing ids in index order, stopping one past the cap: covering
    indexes (migration 0003) answer it without touching the table."""
    return entries.order_by("listing_id").values("listing_id").distinct()[: COUNT_EXACT_UP_TO + 1]


def _head(entries: QuerySet[CatalogueEntry], query: CatalogueQuery):
    """(listings found up to the cap + 1, page ids, more follow, generation).
    On PostgreSQL the count, the rows of the page and the catalogue
    generation come back from ONE statement: on a busy two-core machine each
    round trip costs about a millisecond."""
    _, limit = _window(query)
    if not _fulltext():
        row_key, _, descending = _sort_key(query)
        order = F("row_key").desc() if descending else F("row_key").asc()
        rows = (
            entries.annotate(row_key=row_key)
            .order_by(order, "-listing_id")
            .values_list("listing_id", flat=True)[:limit]
        )
        found = _count_rows(entries).count()
        ids, has_next = _page_from_rows(entries, query, list(rows))
        return found, ids, has_next, None
    where, params = _where(entries)
    column, descending = _SORT_COLUMNS.get(query.sort, _NEWEST)
    direction = "DESC" if descending else "ASC"
    t = _TABLE
    sql = (
        # `where` is compiled by Django with placeholders; the rest is constant.
        f"SELECT (SELECT count(*) FROM (SELECT DISTINCT {t}.listing_id FROM {t} "  # noqa: S608
        f"WHERE {where} ORDER BY 1 LIMIT %s) counted), "
        f"ARRAY(SELECT {t}.listing_id FROM {t} WHERE {where} "
        f'ORDER BY {t}."{column}" {direction}, {t}.listing_id DESC LIMIT %s), '
        f"({_GENERATION_SQL})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, COUNT_EXACT_UP_TO + 1, *params, limit])
        found, rows, generation = cursor.fetchone()
    ids, has_next = _page_from_rows(entries, query, rows)
    return found, ids, has_next, generation


def _relevance_head(entries: QuerySet[CatalogueEntry], query: CatalogueQuery):
    """Best matches first, by each listing's best-ranked matching row. Ranking
    has to score every matching row anyway, so one pass over them also gives
    the exact count: (count, page ids, more follow, generation)."""
    where, params = _where(entries)
    t = _TABLE
    sql = (
        # `where` is compiled by Django with placeholders; the rest is constant.
        f"WITH best AS (SELECT {t}.listing_id, max(ts_rank({t}.search_vector, "  # noqa: S608
        f"websearch_to_tsquery({_TS_CONFIG}, %s))) AS rank FROM {t} WHERE {where} "
        f"GROUP BY 1) "
        "SELECT (SELECT count(*) FROM best), ARRAY(SELECT listing_id FROM best "
        f"ORDER BY rank DESC, listing_id DESC LIMIT %s OFFSET %s), ({_GENERATION_SQL})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [query.q, *params, query.page_size + 1, query.offset])
        count, ids, generation = cursor.fetchone()
    return count, list(ids[: query.page_size]), len(ids) > query.page_size, generation


def _matched_recordings(entries: QuerySet[CatalogueEntry], ids: list[int]) -> dict[int, set[int]]:
    """For each of these listings, which of its recordings satisfied the
    filters. A separate query is cheaper than an EXISTS per listing item
    (measured on a page of 100)."""
    matched: dict[int, set[int]] = {}
    if _fulltext():
        where, params = _where(entries)
        t = _TABLE
        sql = (
            # `where` is compiled by Django with placeholders; the rest is constant.
            f"SELECT {t}.listing_id, {t}.recording_id FROM {t} "  # noqa: S608
            f"WHERE {t}.listing_id = ANY(%s) AND {where}"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [list(ids), *params])
            pairs = cursor.fetchall()
    else:
        pairs = entries.filter(listing_id__in=ids).values_list("listing_id", "recording_id")
    for listing_id, recording_id in pairs:
        matched.setdefault(listing_id, set()).add(recording_id)
    return matched


# What buyers are shown, and nothing more: in particular no original file
# name, path, hash or size is ever loaded for the catalogue.
_LISTING_FIELDS = (
    "title",
    "description",
    "price_minor",
    "currency",
    "published_at",
    "duration_days",
    "permitted_uses",
    "worldwide",
    "territories",
    "sublicensing_allowed",
    "attribution_required",
    "exclusivity",
    "revenue_share_bps",
    "revenue_threshold_minor",
    "per_unit_rates",
    "reuse_caps",
)
_RECORDING_FIELDS = (
    "uid",
    "title",
    "language",
    "duration_seconds",
    "media_kind",
    "preview",
    "preview_status",
)
_SIGNATURE_FIELDS = EmotionalSignature.FIELDS
_SHOWN_FIELDS = (
    "position",
    "listing",
    "recording",
    "listing__performer",
    "listing__performer__stage_name",
    "recording__performer",
    *(f"listing__{name}" for name in _LISTING_FIELDS),
    *(f"recording__{name}" for name in _RECORDING_FIELDS),
    *(f"recording__signature__{name}" for name in _SIGNATURE_FIELDS),
)


def _listings_with_recordings(items: QuerySet[ListingItem]) -> list[Listing]:
    """Listing models, each with ``catalogue_recordings`` (in the pack's order,
    each with its ``signature``), from ONE query over the listing items."""
    listings: dict[int, Listing] = {}
    for item in (
        items.select_related("listing__performer", "recording__signature")
        .only(*_SHOWN_FIELDS)
        .order_by("listing_id", "position", "id")
    ):
        listing = listings.get(item.listing_id)
        if listing is None:
            listing = listings[item.listing_id] = item.listing
            listing.catalogue_recordings = []
        listing.catalogue_recordings.append(item.recording)
    return list(listings.values())


# Search results are plain read-only objects rather than models: building a
# model instance per listing, performer, item, recording and signature cost
# more than the whole database work on a page of 100 (bench/catalogue.py).
# They answer to the same attribute names, so templates, serializers and the
# terms helpers take either.
_ANNOTATOR_LABELS = dict(Annotator.choices)
_MEDIA_KIND_LABELS = dict(Recording.MediaKind.choices)


@dataclass(slots=True)
class ShownPerformer:
    id: int
    stage_name: str

    @property
    def pk(self) -> int:
        return self.id


@dataclass(slots=True)
class ShownSignature:
    primary_emotion: str
    intensity: int
    valence: float
    arousal: float
    authenticity: str
    arc: list
    action_units: list
    vocal_events: list
    annotator: str
    description: str
    tags: list

    def get_annotator_display(self) -> str:
        return _ANNOTATOR_LABELS.get(self.annotator, self.annotator)


@dataclass(slots=True)
class ShownRecording:
    id: int
    uid: str
    title: str
    language: str
    duration_seconds: float
    media_kind: str
    preview: str  # the preview's storage name ("" if none); never the original's
    preview_status: str
    signature: ShownSignature | None

    @property
    def pk(self) -> int:
        return self.id

    def get_media_kind_display(self) -> str:
        return _MEDIA_KIND_LABELS.get(self.media_kind, self.media_kind)


@dataclass(slots=True)
class ShownListing:
    id: int
    performer: ShownPerformer
    title: str
    description: str
    price_minor: int
    currency: str
    published_at: Any
    duration_days: int
    permitted_uses: list
    worldwide: bool
    territories: list
    sublicensing_allowed: bool
    attribution_required: bool
    exclusivity: str
    revenue_share_bps: int
    revenue_threshold_minor: int
    per_unit_rates: dict
    reuse_caps: dict
    catalogue_recordings: list = field(default_factory=list)
    matched_recording_ids: set = field(default_factory=set)

    @property
    def pk(self) -> int:
        return self.id

    @property
    def performer_id(self) -> int:
        return self.performer.id


def _shown_listings(ids: list[int]) -> list[ShownListing]:
    """The listings with these ids, in this order, with their recordings and
    signatures: one query, no model instances."""
    if not _fulltext():
        return _shown_listings_orm(ids)
    sql, listing_json, signature_json = _shown_statement()
    with connection.cursor() as cursor:
        cursor.execute(sql, [list(ids)])
        rows = cursor.fetchall()
    # JSON columns arrive as text (Django's loader for jsonb). Decoding them
    # with one json.loads per value cost more than the query on a page of
    # 100: they are decoded in a single call for the whole page instead.
    texts: list[str] = []
    seen: set[int] = set()
    for row in rows:
        if row[0] not in seen:
            seen.add(row[0])
            texts.extend(row[i] or "null" for i in listing_json)
        if row[_SIGNATURE_AT] is not None:
            texts.extend(row[i] or "null" for i in signature_json)
    decoded = iter(json.loads("[" + ",".join(texts) + "]"))
    listings: dict[int, ShownListing] = {}
    for row in rows:
        values = list(row)
        listing_id = values[0]
        listing = listings.get(listing_id)
        if listing is None:
            for i in listing_json:
                values[i] = next(decoded)
            if values[_PUBLISHED_AT] is not None:
                values[_PUBLISHED_AT] = datetime.fromisoformat(values[_PUBLISHED_AT]).replace(
                    tzinfo=UTC
                )
            listing = listings[listing_id] = ShownListing(
                listing_id, ShownPerformer(values[1], values[2]), *values[3:_RECORDING_AT]
            )
        signature = None
        if values[_SIGNATURE_AT] is not None:
            for i in signature_json:
                values[i] = next(decoded)
            signature = ShownSignature(*values[_SIGNATURE_AT + 1 :])
        listing.catalogue_recordings.append(
            ShownRecording(*values[_RECORDING_AT:_SIGNATURE_AT], signature=signature)
        )
    return [listings[i] for i in ids if i in listings]


# Positions in a row of _shown_statement: the listing's id, performer id and
# stage name, its fields; the recording's id and fields; the signature's id
# (None without one) and fields.
_RECORDING_AT = 3 + len(_LISTING_FIELDS)
_SIGNATURE_AT = _RECORDING_AT + 1 + len(_RECORDING_FIELDS)
_PUBLISHED_AT = 3 + _LISTING_FIELDS.index("published_at")


@functools.cache
def _shown_statement() -> tuple[str, tuple[int, ...], tuple[int, ...]]:
    """What _shown_listings_orm's queryset compiles to, written once: (SQL
    taking an array of listing ids, positions of the listing's JSON columns,
    of the signature's)."""
    from django.db.models import JSONField

    from accounts.models import PerformerProfile

    def table(model) -> str:
        return connection.ops.quote_name(model._meta.db_table)

    def column(alias: str, model, name: str) -> str:
        return f"{alias}.{connection.ops.quote_name(model._meta.get_field(name).column)}"

    def is_json(model, name: str) -> bool:
        return isinstance(model._meta.get_field(name), JSONField)

    columns = [
        "li.listing_id",
        column("l", Listing, "performer"),
        column("p", PerformerProfile, "stage_name"),
        *(
            # As text in UTC, parsed by datetime.fromisoformat: psycopg's
            # timestamptz loader under Django is Python code, and slower.
            f"to_char({column('l', Listing, name)} AT TIME ZONE 'UTC', "
            "'YYYY-MM-DD\"T\"HH24:MI:SS.US')"
            if name == "published_at"
            else column("l", Listing, name)
            for name in _LISTING_FIELDS
        ),
        "li.recording_id",
        *(column("r", Recording, name) for name in _RECORDING_FIELDS),
        "s.id",
        *(column("s", EmotionalSignature, name) for name in _SIGNATURE_FIELDS),
    ]
    listing_json = tuple(3 + i for i, name in enumerate(_LISTING_FIELDS) if is_json(Listing, name))
    signature_json = tuple(
        _SIGNATURE_AT + 1 + i
        for i, name in enumerate(_SIGNATURE_FIELDS)
        if is_json(EmotionalSignature, name)
    )
    sql = (
        f"SELECT {', '.join(columns)} FROM {table(ListingItem)} li "  # noqa: S608
        f"JOIN {table(Listing)} l ON l.id = li.listing_id "
        f"JOIN {table(PerformerProfile)} p ON p.id = {column('l', Listing, 'performer')} "
        f"JOIN {table(Recording)} r ON r.id = li.recording_id "
        f"LEFT JOIN {table(EmotionalSignature)} s "
        f"ON {column('s', EmotionalSignature, 'recording')} = r.id "
        "WHERE li.listing_id = ANY(%s) ORDER BY li.listing_id, li.position, li.id"
    )
    return sql, listing_json, signature_json


def _shown_listings_orm(ids: list[int]) -> list[ShownListing]:
    """_shown_listings where there is no hand-written statement (SQLite)."""
    columns = (
        "listing_id",
        "listing__performer_id",
        "listing__performer__stage_name",
        *(f"listing__{name}" for name in _LISTING_FIELDS),
        "recording_id",
        *(f"recording__{name}" for name in _RECORDING_FIELDS),
        "recording__signature__id",
        *(f"recording__signature__{name}" for name in _SIGNATURE_FIELDS),
    )
    listings: dict[int, ShownListing] = {}
    rows = (
        ListingItem.objects.filter(listing_id__in=ids)
        .order_by("listing_id", "position", "id")
        .values_list(*columns)
    )
    for row in rows:
        listing_id = row[0]
        listing = listings.get(listing_id)
        if listing is None:
            listing = listings[listing_id] = ShownListing(
                listing_id, ShownPerformer(row[1], row[2]), *row[3:_RECORDING_AT]
            )
        signature = row[_SIGNATURE_AT:]
        listing.catalogue_recordings.append(
            ShownRecording(
                *row[_RECORDING_AT:_SIGNATURE_AT],
                signature=ShownSignature(*signature[1:]) if signature[0] is not None else None,
            )
        )
    return [listings[i] for i in ids if i in listings]


@dataclass
class CataloguePage:
    """``count`` is exact when ``count_exact``; past ``COUNT_EXACT_UP_TO``
    matching listings it says "at least this many" and ``num_pages`` is None."""

    query: CatalogueQuery
    count: int
    count_exact: bool
    listings: list[ShownListing]
    has_next: bool
    facets: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def num_pages(self) -> int | None:
        if not self.count_exact:
            return None
        return max(1, math.ceil(self.count / self.query.page_size))

    @property
    def has_previous(self) -> bool:
        return self.query.page > 1

    @property
    def start_index(self) -> int:
        return self.query.offset + 1 if self.listings else 0

    @property
    def end_index(self) -> int:
        return self.query.offset + len(self.listings)


def catalogue_search(
    params: CatalogueQuery | Mapping[str, Any], *, facets: bool = True
) -> CataloguePage:
    """One page of listings for sale that match ``params`` (validated here if
    given raw), how many match and, with ``facets``, the number of matching
    listings per emotion and per authenticity (each counted with every OTHER
    filter applied). Each listing comes with ``performer``,
    ``catalogue_recordings`` (each with ``signature``) and
    ``matched_recording_ids``: the recordings that satisfied the filters.

    The number of queries does not depend on the page size. On PostgreSQL:
    one for the count, the page's ids and the catalogue generation; one for
    the page's listings with everything shown of them; one for which of their
    recordings matched; and, when the cache does not hold them, one per facet.
    (Rarely one more: see _page_from_rows.)"""
    query = params if isinstance(params, CatalogueQuery) else catalogue_query_clean(params)
    entries = _matching_entries(query)
    if query.sort == "relevance" and _fulltext():
        count, ids, has_next, generation = _relevance_head(entries, query)
        count_exact = True
    else:
        found, ids, has_next, generation = _head(entries, query)
        count, count_exact = min(found, COUNT_EXACT_UP_TO), found <= COUNT_EXACT_UP_TO

    listings: list[ShownListing] = []
    if ids:
        listings = _shown_listings(ids)
        matched = _matched_recordings(entries, ids)
        for listing in listings:
            listing.matched_recording_ids = matched.get(listing.pk, set())

    return CataloguePage(
        query=query,
        count=count,
        count_exact=count_exact,
        listings=listings,
        has_next=has_next,
        facets=catalogue_facets(query, generation=generation) if facets else {},
    )


def catalogue_generation() -> int | None:
    """A number that changes, in the same transaction, whenever any
    catalogue row changes (trigger from migration 0003); None where the
    database has no such counter (SQLite)."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(_GENERATION_SQL)
        row = cursor.fetchone()
    return row[0] if row else None


def _facets_cache_key(query: CatalogueQuery, generation: int) -> str:
    import hashlib

    filters = replace(query, sort="", page=1, page_size=0)
    digest = hashlib.sha256(repr(filters).encode()).hexdigest()[:32]
    return f"catalogue:facets:{generation}:{digest}"


def catalogue_facets(
    query: CatalogueQuery, *, generation: int | None = None
) -> dict[str, dict[str, int]]:
    """Matching listings per emotion and per authenticity, every code listed
    (zero where nothing matches). Each facet ignores its own filter, so a
    buyer sees how many results ticking another box would add.

    Counting every matching row of a broad search is the costliest part of a
    search, and its answer only changes when the catalogue does, so it is
    cached under the catalogue's generation: a cached answer is never older
    than the catalogue the reader sees."""
    if generation is None:
        generation = catalogue_generation()
    key = _facets_cache_key(query, generation) if generation is not None else None
    if key is not None:
        cached = cache.get(key)
        if cached is not None:
            return cached
    result: dict[str, dict[str, int]] = {}
    for name, column, codes in (
        ("emotion", "primary_emotion", Emotion.values),
        ("authenticity", "authenticity", Authenticity.values),
    ):
        counts = dict(
            _matching_entries(query, skip=frozenset({name}))
            .values(column)
            .annotate(n=Count("listing_id", distinct=True))
            .order_by()
            .values_list(column, "n")
        )
        result[name] = {code: counts.get(code, 0) for code in codes}
    if key is not None:
        cache.set(key, result, FACETS_CACHE_SECONDS)
    return result


# --- One listing, one preview -------------------------------------------------------------


def catalogue_listing(listing_id: int) -> Listing:
    """A listing buyers may see: published and in the catalogue, with its
    ``catalogue_recordings``. Anything else is 404, whoever asks (owners and
    staff see their drafts on their own pages). One query."""
    items = ListingItem.objects.filter(
        Exists(CatalogueEntry.objects.filter(listing_id=OuterRef("listing_id"))),
        listing_id=listing_id,
        listing__status=Listing.Status.PUBLISHED,
    )
    listings = _listings_with_recordings(items)
    if not listings:
        raise NotFound("No such listing in the catalogue.", code="listing_not_found")
    return listings[0]


def catalogue_preview_recording(uid: str) -> Recording:
    """The recording whose PREVIEW may be played: active, in at least one
    listing for sale, with a preview ready. The original file is never
    served from here."""
    recording = (
        Recording.objects.filter(
            Exists(CatalogueEntry.objects.filter(recording_id=OuterRef("pk"))),
            uid=uid,
            status=Recording.Status.ACTIVE,
            preview_status=Recording.PreviewStatus.READY,
        )
        .exclude(preview="")
        .only("id", "uid", "preview", "preview_status", "status", "media_kind")
        .first()
    )
    if recording is None:
        raise NotFound("No preview for this recording.", code="preview_not_found")
    return recording


def preview_url_of(recording: Recording) -> str | None:
    """Where the recording's preview plays (never the original), or None."""
    if recording.preview_status == Recording.PreviewStatus.READY and recording.preview:
        return _preview_path(recording.uid)
    return None


def _preview_path(uid: str) -> str:
    return preview_path_template().replace(PREVIEW_UID, uid)


PREVIEW_UID = "UIDUIDUID"


def preview_path_template() -> str:
    """The path of a preview with ``PREVIEW_UID`` in place of the recording's
    uid: to be looked up once for a page of results rather than per recording."""
    from django.urls import get_script_prefix

    return _preview_template(get_script_prefix())


@functools.lru_cache(maxsize=8)
def _preview_template(script_prefix: str) -> str:
    """reverse() once per script prefix rather than once per recording: it is
    measurable on a page of 100 listings. Recording uids need no quoting."""
    from django.urls import reverse

    return reverse("catalogue_preview", args=[PREVIEW_UID])


# --- License terms in plain language ------------------------------------------------------


def _join(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def _percent(bps: int) -> str:
    whole, rest = divmod(int(bps), 100)
    return f"{whole}%" if not rest else f"{whole}.{rest:02d}".rstrip("0") + "%"


def _duration_parts(days: int) -> tuple[int, str]:
    if days % 365 == 0:
        return days // 365, "year"
    if days % 30 == 0:
        return days // 30, "month"
    return days, "day"


def license_duration_phrase(days: int) -> str:
    """730 → "2-year", 180 → "6-month", 45 → "45-day" (as in "2-year license")."""
    number, unit = _duration_parts(days)
    return f"{number}-{unit}"


def license_duration_words(days: int) -> str:
    """730 → "2 years", 365 → "1 year", 45 → "45 days"."""
    number, unit = _duration_parts(days)
    return f"{number} {unit}{'' if number == 1 else 's'}"


@functools.lru_cache(maxsize=32)
def _country_names(language: str | None) -> dict[str, str]:
    """Every country's name in this language, by code. Asking django_countries
    for one name translates it again each time: it was half the cost of
    writing a page of 100 results."""
    from django_countries import countries

    return {code: str(name) for code, name in countries}


def _country_name(code: str) -> str:
    from django_countries import countries

    return countries.name(code) or code


def territories_phrase(listing: Listing) -> str:
    if listing.worldwide or not listing.territories:
        return "worldwide"
    known = _country_names(get_language())
    names = [known.get(code) or _country_name(code) for code in listing.territories]
    if len(names) > 5:
        return f"in {len(names)} countries"
    return "in " + _join(names)


def uses_phrase(uses: Iterable[str]) -> str:
    return _join([_USE_WORDS.get(code) or _use_words(code) for code in uses])


def _use_words(code: str) -> str:
    label = _USE_LABELS.get(code, code)
    return label[0].lower() + label[1:] if label else label


_USE_WORDS = {code: _use_words(code) for code in _USE_LABELS}


def revenue_share_phrase(listing: Listing) -> str:
    if not listing.revenue_share_bps:
        return "no share of downstream revenue"
    share = _percent(listing.revenue_share_bps)
    if not listing.revenue_threshold_minor:
        return f"{share} of all downstream revenue"
    threshold = format_money(listing.revenue_threshold_minor, listing.currency, trim=True)
    return f"{share} of downstream revenue above {threshold}"


def per_unit_rate_phrases(listing: Listing) -> list[str]:
    if not listing.per_unit_rates:
        return []
    phrases = []
    for metric, rate in listing.per_unit_rates.items():
        label = _METRIC_WORDS.get(metric, metric)
        per = int(rate.get("per", 1))
        amount = format_money(int(rate.get("amount_minor", 0)), listing.currency)
        if per == 1:
            phrases.append(f"{amount} per {label}")
        else:
            unit = label if label.endswith("s") else label + "s"
            phrases.append(f"{amount} per {per:,} {unit}")
    return phrases


_METRIC_WORDS = {metric.value: metric.label.lower() for metric in Metric}
_CAP_LABELS = {
    "max_models_trained": ("model trained", "models trained"),
    "max_fine_tunes": ("fine-tune", "fine-tunes"),
    "max_deployments": ("deployment", "deployments"),
}


def reuse_cap_phrases(listing: Listing) -> list[str]:
    phrases = []
    for key, value in (listing.reuse_caps or {}).items():
        one, many = _CAP_LABELS.get(key, (key, key))
        phrases.append(f"at most {value:,} {one if value == 1 else many}")
    return phrases


def listing_terms_summary(listing: Listing) -> str:
    """The license in one line, e.g. "2-year license, worldwide, model
    training and evaluation, 20% of downstream revenue above $10,000"."""
    parts = [
        f"{license_duration_phrase(listing.duration_days)} license",
        territories_phrase(listing),
        uses_phrase(listing.permitted_uses),
        revenue_share_phrase(listing),
        *per_unit_rate_phrases(listing),
        *reuse_cap_phrases(listing),
    ]
    if listing.sublicensing_allowed:
        parts.append("sublicensing allowed")
    if listing.attribution_required:
        parts.append("attribution required")
    return ", ".join(p for p in parts if p)
