"""The buyer-facing catalogue: search filters (alone and together), packs,
free text, sorting, paging, facets, what never appears, query counts, the
listing page with its arc timeline, and preview playback."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import numpy as np
import pytest
import soundfile
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.urls import reverse

from accounts.models import Membership
from core.errors import ValidationError
from marketplace import services
from marketplace.models import CatalogueEntry, Listing, Recording
from marketplace.selectors_catalogue import (
    catalogue_search,
    listing_terms_summary,
)
from marketplace.services import ListingTerms
from marketplace.templatetags.money import format_money, major_to_minor, money
from tests.factories import make_organization, make_performer, make_user
from tests.factories_marketplace import make_published_listing, make_sellable_recording

pytestmark = pytest.mark.django_db


# --- A small catalogue ----------------------------------------------------------------------------


@dataclass
class Catalogue:
    ana: object
    ben: object
    reviewer: object
    grief: Listing  # Ana, one grief take, $500, training + evaluation, worldwide
    anger: Listing  # Ana, one anger take in es-MX, $120, training, US and CA only
    joy: Listing  # Ben, one joy take in French, €2,000, evaluation, worldwide
    pack: Listing  # Ben, pack: fear 5 masked (en-GB, 4 s) + calm 1 genuine (de, 1 s), $800
    recordings: dict


def build_catalogue() -> Catalogue:
    reviewer = make_user(email="reviewer@residuals.example", is_staff=True)
    ana = make_performer(email="ana@example.com", stage_name="Ana Stage", legal_name="Ana Legal")
    ben = make_performer(email="ben@example.com", stage_name="Ben Voice", legal_name="Ben Legal")
    r_grief = make_sellable_recording(
        ana,
        title="Graveside",
        emotion="grief",
        intensity=4,
        authenticity="genuine",
        valence=-0.7,
        arousal=0.6,
        seconds=2.0,
        language="en",
        tags=("widow", "funeral"),
        description="She grieved quietly, then her voice cracks at the end.",
    )
    r_anger = make_sellable_recording(
        ana,
        title="Parking ticket",
        emotion="anger",
        intensity=5,
        authenticity="forced",
        valence=-0.8,
        arousal=0.9,
        seconds=3.0,
        language="es-MX",
        tags=("shouting",),
        description="A furious rant about a parking fine.",
    )
    r_joy = make_sellable_recording(
        ben,
        title="Good news",
        emotion="joy",
        intensity=2,
        authenticity="genuine",
        valence=0.8,
        arousal=0.5,
        seconds=1.0,
        language="fr",
        tags=("laughter",),
    )
    r_fear = make_sellable_recording(
        ben,
        title="Footsteps",
        emotion="fear",
        intensity=5,
        authenticity="masked",
        valence=-0.6,
        arousal=0.95,
        seconds=4.0,
        language="en-GB",
        uses=("model_training", "fine_tuning"),
    )
    r_calm = make_sellable_recording(
        ben,
        title="Exhale",
        emotion="calm",
        intensity=1,
        authenticity="genuine",
        valence=0.3,
        arousal=0.1,
        seconds=1.0,
        language="de",
        uses=("model_training", "fine_tuning"),
    )
    services.signature_save(
        recording=r_grief,
        by=ana.user,
        primary_emotion="grief",
        intensity=4,
        valence=-0.7,
        arousal=0.6,
        authenticity="genuine",
        arc=[
            {"start": 0, "end": 0.8, "emotion": "anger", "intensity": 3, "note": "clipped"},
            {"start": 0.8, "end": 2.0, "emotion": "grief", "intensity": 5, "note": "breaks"},
        ],
        vocal_events=["sob"],
        tags=["widow", "funeral"],
        description="She grieved quietly, then her voice cracks at the end.",
    )
    grief = make_published_listing(
        ana,
        [r_grief],
        reviewer=reviewer,
        title="Grief, held back",
        price_minor=50_000,
        uses=("model_training", "evaluation"),
        description="A widow at the graveside.",
    )
    anger = make_published_listing(
        ana,
        [r_anger],
        reviewer=reviewer,
        title="Road rage",
        price_minor=12_000,
        uses=("model_training",),
        worldwide=False,
        territories=["US", "CA"],
    )
    joy = make_published_listing(
        ben,
        [r_joy],
        reviewer=reviewer,
        title="Joy, unfiltered",
        price_minor=200_000,
        currency="EUR",
        uses=("evaluation",),
    )
    pack = make_published_listing(
        ben,
        [r_fear, r_calm],
        reviewer=reviewer,
        title="Night walk pack",
        price_minor=80_000,
        uses=("model_training", "fine_tuning"),
    )
    return Catalogue(
        ana=ana,
        ben=ben,
        reviewer=reviewer,
        grief=grief,
        anger=anger,
        joy=joy,
        pack=pack,
        recordings={
            "grief": r_grief,
            "anger": r_anger,
            "joy": r_joy,
            "fear": r_fear,
            "calm": r_calm,
        },
    )


@pytest.fixture
def cat() -> Catalogue:
    return build_catalogue()


def ids(params: dict) -> list[int]:
    return [listing.pk for listing in catalogue_search(params).listings]


def as_set(params: dict) -> set[int]:
    return set(ids(params))


# --- Filters, one at a time -----------------------------------------------------------------------


def test_everything_for_sale_newest_first(cat):
    assert ids({}) == [cat.pack.pk, cat.joy.pk, cat.anger.pk, cat.grief.pk]
    assert catalogue_search({}).count == 4


def test_emotion_one_or_several(cat):
    assert ids({"emotion": "grief"}) == [cat.grief.pk]
    assert as_set({"emotion": ["grief", "joy"]}) == {cat.grief.pk, cat.joy.pk}
    assert as_set({"emotion": "grief,anger"}) == {cat.grief.pk, cat.anger.pk}
    # A pack is found by any of its recordings' emotions.
    assert ids({"emotion": "calm"}) == [cat.pack.pk]


def test_intensity_range(cat):
    assert as_set({"intensity_min": "5"}) == {cat.anger.pk, cat.pack.pk}
    assert as_set({"intensity_max": "2"}) == {cat.joy.pk, cat.pack.pk}
    assert as_set({"intensity_min": "3", "intensity_max": "4"}) == {cat.grief.pk}


def test_authenticity(cat):
    assert as_set({"authenticity": "forced"}) == {cat.anger.pk}
    assert as_set({"authenticity": ["masked", "forced"]}) == {cat.anger.pk, cat.pack.pk}


def test_valence_and_arousal_ranges(cat):
    assert as_set({"valence_min": "0.5"}) == {cat.joy.pk}
    assert as_set({"valence_max": "-0.75"}) == {cat.anger.pk}
    assert as_set({"arousal_min": "0.9"}) == {cat.anger.pk, cat.pack.pk}
    assert as_set({"arousal_max": "0.2"}) == {cat.pack.pk}


def test_language_is_a_bcp47_prefix(cat):
    assert as_set({"language": "es"}) == {cat.anger.pk}
    assert as_set({"language": "es-MX"}) == {cat.anger.pk}
    assert as_set({"language": "en"}) == {cat.grief.pk, cat.pack.pk}  # en and en-GB
    assert as_set({"language": "en-gb"}) == {cat.pack.pk}
    assert as_set({"language": "en-g"}) == set()  # a prefix of subtags, not of letters


def test_performer_by_id(cat):
    assert as_set({"performer": str(cat.ana.pk)}) == {cat.grief.pk, cat.anger.pk}
    assert as_set({"performer": str(cat.ben.pk)}) == {cat.joy.pk, cat.pack.pk}
    assert as_set({"performer": "999999"}) == set()


def test_duration_range(cat):
    assert as_set({"duration_min": "3"}) == {cat.anger.pk, cat.pack.pk}
    assert as_set({"duration_max": "1.5"}) == {cat.joy.pk, cat.pack.pk}
    assert as_set({"duration_min": "1.5", "duration_max": "2.5"}) == {cat.grief.pk}


def test_permitted_use_all_must_be_permitted(cat):
    assert as_set({"use": "evaluation"}) == {cat.grief.pk, cat.joy.pk}
    assert as_set({"use": "fine_tuning"}) == {cat.pack.pk}
    assert as_set({"use": ["model_training", "evaluation"]}) == {cat.grief.pk}
    assert as_set({"use": "research_only"}) == set()


def test_territory_worldwide_or_listed(cat):
    assert as_set({"territory": "us"}) == {cat.grief.pk, cat.anger.pk, cat.joy.pk, cat.pack.pk}
    assert as_set({"territory": "DE"}) == {cat.grief.pk, cat.joy.pk, cat.pack.pk}
    assert as_set({"territory": "CA"}) == {cat.grief.pk, cat.anger.pk, cat.joy.pk, cat.pack.pk}


def test_price_range_in_minor_units_and_currency(cat):
    # Price bounds are in USD unless a currency is given: the € listing is out.
    assert as_set({"price_min": "20000"}) == {cat.grief.pk, cat.pack.pk}
    assert as_set({"price_max": "50000"}) == {cat.grief.pk, cat.anger.pk}
    assert as_set({"price_min": "100000", "currency": "EUR"}) == {cat.joy.pk}
    assert as_set({"currency": "eur"}) == {cat.joy.pk}
    # The web form's major units.
    assert as_set({"price_from": "500", "price_to": "500.00"}) == {cat.grief.pk}


def test_media_kind(cat):
    assert as_set({"media_kind": "audio"}) == {cat.grief.pk, cat.anger.pk, cat.joy.pk, cat.pack.pk}
    assert as_set({"media_kind": "video"}) == set()
    # A video take (the upload sets media_kind from the file's bytes).
    Recording.objects.filter(pk=cat.recordings["joy"].pk).update(media_kind="video")
    services.catalogue_refresh_listing(cat.joy)
    assert as_set({"media_kind": "video"}) == {cat.joy.pk}


# --- Filters together, and packs ------------------------------------------------------------------


def test_filters_combine(cat):
    params = {"emotion": "anger", "intensity_min": "5", "language": "es", "use": "model_training"}
    assert ids(params) == [cat.anger.pk]
    assert ids({**params, "territory": "DE"}) == []
    assert ids({"emotion": ["grief", "anger"], "authenticity": "genuine"}) == [cat.grief.pk]
    assert ids({"performer": str(cat.ben.pk), "price_max": "100000", "duration_min": "3"}) == [
        cat.pack.pk
    ]


def test_a_pack_matches_only_when_one_recording_matches_every_filter(cat):
    # Fear is intensity 5, calm is intensity 1: fear at 1 is nobody.
    assert ids({"emotion": "fear", "intensity_max": "1"}) == []
    assert ids({"emotion": "calm", "intensity_max": "1"}) == [cat.pack.pk]
    # en-GB is the fear take, de the calm one.
    assert ids({"emotion": "calm", "language": "en"}) == []
    assert ids({"emotion": "fear", "language": "en"}) == [cat.pack.pk]
    assert ids({"authenticity": "masked", "duration_max": "2"}) == []
    page = catalogue_search({"emotion": "calm"})
    assert page.listings[0].matched_recording_ids == {cat.recordings["calm"].pk}


# --- Free text (PostgreSQL full-text search) ------------------------------------------------------


def test_free_text_uses_english_stemming(cat):
    # Tags, descriptions and titles are searched; "widows" stems to "widow".
    assert ids({"q": "widows"}) == [cat.grief.pk]
    # "grieving" stems to "griev", which "grieved" in the description shares…
    assert ids({"q": "grieving"}) == [cat.grief.pk]
    # … while "grief" is a different stem: the label "Grief" only finds grief.
    assert ids({"q": "grief"}) == [cat.grief.pk]
    assert ids({"q": "laughs"}) == []  # "laughter" is its own stem
    assert ids({"q": "laughter"}) == [cat.joy.pk]
    # Stage names and emotion labels are in the document too.
    assert as_set({"q": "Ben Voice"}) == {cat.joy.pk, cat.pack.pk}
    assert ids({"q": "footsteps"}) == [cat.pack.pk]


def test_free_text_websearch_syntax(cat):
    assert ids({"q": '"voice cracks"'}) == [cat.grief.pk]
    assert ids({"q": '"cracks voice"'}) == []
    assert as_set({"q": "widow or shouting"}) == {cat.grief.pk, cat.anger.pk}
    assert as_set({"q": "Ana -widow"}) == {cat.anger.pk}
    assert ids({"q": "widow shouting"}) == []  # every word must match


def test_free_text_is_answered_by_the_gin_index(cat):
    from django.db import connection

    from marketplace.selectors_catalogue import _matching_entries, catalogue_query_clean

    query = _matching_entries(catalogue_query_clean({"q": "widow"}))
    sql, params = query.values("id").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "marketplace_catalogue_fts_vector" in plan


def test_free_text_combines_with_filters(cat):
    assert ids({"q": "Ana", "emotion": "anger"}) == [cat.anger.pk]
    assert ids({"q": "Ana", "emotion": "joy"}) == []


# --- Sorting and paging ---------------------------------------------------------------------------


def test_sorting(cat):
    assert ids({"sort": "price_asc", "currency": "USD"}) == [
        cat.anger.pk,
        cat.grief.pk,
        cat.pack.pk,
    ]
    assert ids({"sort": "price_desc", "currency": "USD"}) == [
        cat.pack.pk,
        cat.grief.pk,
        cat.anger.pk,
    ]
    # Packs sort by their shortest matching take ascending, longest descending.
    assert ids({"sort": "duration_asc"})[:2] == [cat.pack.pk, cat.joy.pk]
    assert ids({"sort": "duration_desc"}) == [cat.pack.pk, cat.anger.pk, cat.grief.pk, cat.joy.pk]
    assert ids({"sort": "intensity_desc"}) == [cat.pack.pk, cat.anger.pk, cat.grief.pk, cat.joy.pk]
    # Only matching recordings count: without fear, the pack's intensity is 1.
    assert ids({"sort": "intensity_desc", "authenticity": "genuine"}) == [
        cat.grief.pk,
        cat.joy.pk,
        cat.pack.pk,
    ]


def test_relevance_is_the_default_with_text(cat):
    page = catalogue_search({"q": "widow funeral or Ana"})
    assert page.query.sort == "relevance"
    assert [listing.pk for listing in page.listings] == [cat.grief.pk, cat.anger.pk]
    assert catalogue_search({}).query.sort == "newest"
    assert catalogue_search({"sort": "relevance"}).query.sort == "newest"


def test_pagination(cat):
    first = catalogue_search({"page_size": "3"})
    assert first.count == 4 and first.num_pages == 2 and first.has_next
    assert [x.pk for x in first.listings] == [cat.pack.pk, cat.joy.pk, cat.anger.pk]
    second = catalogue_search({"page_size": "3", "page": "2"})
    assert [x.pk for x in second.listings] == [cat.grief.pk]
    assert not second.has_next and second.has_previous
    assert catalogue_search({"page": "9"}).listings == []
    assert catalogue_search({}).query.page_size == 20


# --- Invalid parameters ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"intensity_min": "9"}, "intensity_min"),
        ({"intensity_max": "0"}, "intensity_max"),
        ({"intensity_min": "high"}, "intensity_min"),
        ({"intensity_min": "4", "intensity_max": "2"}, "intensity_min"),
        ({"emotion": "melancholy"}, "emotion"),
        ({"authenticity": "sincere"}, "authenticity"),
        ({"valence_min": "-2"}, "valence_min"),
        ({"arousal_max": "nan"}, "arousal_max"),
        ({"arousal_min": "0.8", "arousal_max": "0.2"}, "arousal_min"),
        ({"price_min": "ten"}, "price_min"),
        ({"price_min": "5000", "price_max": "100"}, "price_min"),
        ({"price_from": "12.345"}, "price_from"),
        ({"price_from": "20", "price_to": "10"}, "price_from"),
        ({"currency": "JPY"}, "currency"),
        ({"use": "world_domination"}, "use"),
        ({"territory": "XX"}, "territory"),
        ({"language": "english!"}, "language"),
        ({"duration_min": "-1"}, "duration_min"),
        ({"media_kind": "image"}, "media_kind"),
        ({"performer": "ana"}, "performer"),
        ({"sort": "random"}, "sort"),
        ({"page": "0"}, "page"),
        ({"page_size": "101"}, "page_size"),
        ({"page": "1000", "page_size": "100"}, "page"),
        ({"q": "x" * 201}, "q"),
    ],
)
def test_invalid_filters_name_the_parameter(db, params, field):
    with pytest.raises(ValidationError) as caught:
        catalogue_search(params)
    assert caught.value.code == "invalid_filter"
    assert field in caught.value.details["fields"]
    assert field in caught.value.message


def test_every_bad_parameter_is_reported_at_once(db):
    with pytest.raises(ValidationError) as caught:
        catalogue_search({"intensity_min": "9", "emotion": "melancholy", "territory": "ZZ"})
    assert set(caught.value.details["fields"]) == {"intensity_min", "emotion", "territory"}


# --- Facets ---------------------------------------------------------------------------------------


def test_facets_count_listings_with_the_other_filters(cat):
    facets = catalogue_search({}).facets
    assert facets["emotion"]["grief"] == 1
    assert facets["emotion"]["fear"] == 1 and facets["emotion"]["calm"] == 1
    assert facets["emotion"]["sadness"] == 0
    assert len(facets["emotion"]) == 20
    # A pack counts once per authenticity even with two genuine-or-masked takes.
    assert facets["authenticity"] == {
        "genuine": 3,  # grief, joy, the pack (calm)
        "suppressed": 0,
        "forced": 1,
        "masked": 1,
        "exaggerated": 0,
    }
    # The emotion facet ignores the emotion filter and honours the others.
    filtered = catalogue_search({"emotion": "grief", "authenticity": "genuine"}).facets
    assert filtered["emotion"]["joy"] == 1  # would be added by ticking joy
    assert filtered["emotion"]["anger"] == 0  # anger is forced
    assert filtered["emotion"]["calm"] == 1
    assert filtered["authenticity"]["genuine"] == 1  # only grief among emotion=grief
    assert filtered["authenticity"]["forced"] == 0
    # Recording-level filters keep packs honest in facets too.
    assert catalogue_search({"intensity_min": "5"}).facets["emotion"]["calm"] == 0


# --- What never appears ---------------------------------------------------------------------------


def test_only_published_listings_for_sale_appear(cat):
    ana = cat.ana
    extra = make_sellable_recording(ana, title="Extra grief", emotion="grief")
    draft = services.listing_create(
        performer=ana,
        by=ana.user,
        recording_ids=[extra.pk],
        terms=ListingTerms(title="Draft grief", price_minor=1000, permitted_uses=["evaluation"]),
    )
    in_review = services.listing_create(
        performer=ana,
        by=ana.user,
        recording_ids=[extra.pk],
        terms=ListingTerms(title="Review grief", price_minor=1000, permitted_uses=["evaluation"]),
    )
    services.listing_submit(listing=in_review, by=ana.user)
    rejected = services.listing_create(
        performer=ana,
        by=ana.user,
        recording_ids=[extra.pk],
        terms=ListingTerms(title="Rejected grief", price_minor=1000, permitted_uses=["evaluation"]),
    )
    services.listing_submit(listing=rejected, by=ana.user)
    services.listing_review(listing=rejected, by=cat.reviewer, approve=False, reason="Title.")
    unpublished = make_published_listing(ana, [extra], reviewer=cat.reviewer, title="Gone grief")
    services.listing_unpublish(listing=unpublished, by=ana.user)

    hidden = {draft.pk, in_review.pk, rejected.pk, unpublished.pk}
    assert not hidden & as_set({"page_size": "100"})
    assert not hidden & as_set({"q": "grief"})
    assert catalogue_search({"emotion": "grief"}).facets["emotion"]["grief"] == 1


def test_withdrawn_consent_takes_the_listing_out_at_once(cat):
    services.consent_withdraw(recording=cat.recordings["calm"], by=cat.ben.user, reason="No.")
    assert cat.pack.pk not in as_set({})
    assert cat.pack.pk not in as_set({"emotion": "fear"})
    assert not CatalogueEntry.objects.filter(listing=cat.pack).exists()


# --- Query counts ---------------------------------------------------------------------------------


@pytest.fixture
def seven_listings(db):
    reviewer = make_user(email="reviewer@residuals.example", is_staff=True)
    performer = make_performer(email="p@example.com", stage_name="P", legal_name="Pat Legal")
    listings = []
    for n in range(6):
        recording = make_sellable_recording(performer, title=f"Take {n}", intensity=1 + n % 5)
        listings.append(make_published_listing(performer, [recording], reviewer=reviewer))
    pack = [make_sellable_recording(performer, title=f"Pack take {n}") for n in range(3)]
    listings.append(make_published_listing(performer, pack, reviewer=reviewer, title="Pack"))
    return listings


@pytest.mark.parametrize(
    ("params", "queries"),
    [
        # count + page of ids + catalogue generation in one statement, the
        # page's listings with everything shown, which recordings matched, and
        # two facet counts (cache cleared: cold)
        ({}, 5),
        ({"sort": "intensity_desc", "emotion": "grief"}, 5),
        ({"sort": "price_asc", "use": "model_training", "language": "en"}, 5),
        ({"sort": "duration_asc", "q": "take"}, 5),
        ({"q": "take"}, 5),
    ],
)
def test_query_count_does_not_grow_with_page_size(
    seven_listings, django_assert_num_queries, params, queries
):
    for size in (5, 50):
        cache.clear()
        with django_assert_num_queries(queries):
            page = catalogue_search({**params, "page_size": str(size)})
            for listing in page.listings:  # everything a result card shows
                listing.performer.stage_name  # noqa: B018
                for recording in listing.catalogue_recordings:
                    recording.signature.primary_emotion  # noqa: B018
                    recording.preview_status  # noqa: B018
        assert len(page.listings) == min(size, 7)


def test_facets_are_cached_until_the_catalogue_changes(cat, django_assert_num_queries):
    before = catalogue_search({"intensity_min": "4"})
    with django_assert_num_queries(3):  # no facet queries: cached
        again = catalogue_search({"intensity_min": "4", "sort": "price_asc", "page_size": "2"})
    assert again.facets == before.facets
    assert before.facets["emotion"]["grief"] == 1
    extra = make_sellable_recording(cat.ben, title="More grief", emotion="grief", intensity=5)
    make_published_listing(cat.ben, [extra], reviewer=cat.reviewer, title="Grief two")
    after = catalogue_search({"intensity_min": "4"})
    assert after.facets["emotion"]["grief"] == 2


def test_count_is_exact_up_to_a_cap(cat, monkeypatch):
    from marketplace import selectors_catalogue

    monkeypatch.setattr(selectors_catalogue, "COUNT_EXACT_UP_TO", 2)
    page = catalogue_search({"page_size": "1"})
    assert (page.count, page.count_exact, page.num_pages) == (2, False, None)
    assert page.has_next
    last = catalogue_search({"page_size": "1", "page": "4"})
    assert [x.pk for x in last.listings] == [cat.grief.pk] and not last.has_next
    assert catalogue_search({"emotion": "grief"}).count_exact


@pytest.mark.parametrize("sort", ["newest", "intensity_desc", "duration_asc", "price_desc"])
def test_packs_with_many_rows_fall_back_to_grouping(cat, monkeypatch, sort):
    """With no slack the rows read hold fewer listings than the page needs
    (a pack has two rows): the exact GROUP BY answers, in the same order."""
    from marketplace import selectors_catalogue

    expected = [ids({"sort": sort, "page_size": "1", "page": str(n)}) for n in (1, 2, 3)]
    monkeypatch.setattr(selectors_catalogue, "_SLACK_ROWS", 0)
    assert [ids({"sort": sort, "page_size": "1", "page": str(n)}) for n in (1, 2, 3)] == expected
    assert [pk for page in expected for pk in page] == ids({"sort": sort})[:3]


# --- Money and terms in plain language ------------------------------------------------------------


def test_money_filter_formats_minor_units():
    assert money(50_000, "USD") == "$500.00"
    assert money(1250, "EUR") == "€12.50"
    assert money(300, "gbp") == "£3.00"
    assert money(123_456_789, "USD") == "$1,234,567.89"
    assert money(5, "CAD") == "CA$0.05"
    assert money(None) == ""
    assert format_money(1_000_000, "USD", trim=True) == "$10,000"
    assert major_to_minor("12.5", "USD") == 1250
    with pytest.raises(ValueError):
        major_to_minor("1.234", "USD")


def test_terms_summary_in_plain_language(cat):
    assert (
        listing_terms_summary(cat.grief) == "2-year license, worldwide, model training and "
        "evaluation and benchmarking, 20% of downstream revenue above $10,000"
    )
    assert "in United States of America and Canada" in listing_terms_summary(cat.anger)
    assert "€10,000" in listing_terms_summary(cat.joy)


# --- Web: search page -----------------------------------------------------------------------------


def test_search_page_shows_cards_with_facets(client, cat):
    response = client.get(reverse("catalogue"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "4 listings" in html
    for listing in (cat.grief, cat.anger, cat.joy, cat.pack):
        assert reverse("catalogue_detail", args=[listing.pk]) in html
    assert "$500.00" in html and "€2,000.00" in html
    assert "Ana Stage" in html
    assert "Pack of 2 recordings" in html
    assert 'aria-label="Intensity 4 of 5"' in html
    assert "Evaluation and benchmarking" in html
    # Facet counts beside emotions.
    assert re.search(r'value="grief"[^>]*>.*?Grief</span>\s*<span class="cat-count">', html, re.S)


def test_search_page_filters_through_a_shareable_get_url(client, cat):
    response = client.get(reverse("catalogue"), {"emotion": "anger", "language": "es"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "1 listing" in html and "Road rage" in html and "Grief, held back" not in html
    assert 'value="anger" checked' in html
    assert "Emotion: <strong>Anger</strong>" in html  # a removable chip


def test_search_page_understands_comma_lists_and_names_the_performer(client, cat):
    response = client.get(
        reverse("catalogue"), {"emotion": "grief,anger", "performer": str(cat.ana.pk)}
    )
    html = response.content.decode()
    assert "2 listings" in html
    assert 'value="grief" checked' in html and 'value="anger" checked' in html
    assert "Performer: <strong>Ana Stage</strong>" in html
    # Removing one emotion keeps the other.
    assert "?emotion=anger&amp;performer=" in html


def test_search_page_price_in_major_units(client, cat):
    response = client.get(reverse("catalogue"), {"price_from": "100", "price_to": "600"})
    html = response.content.decode()
    assert "Road rage" in html and "Grief, held back" in html and "Night walk" not in html


def test_search_page_explains_bad_filters(client, cat):
    response = client.get(reverse("catalogue"), {"intensity_min": "9", "emotion": "meh"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "Some filters are not valid" in html
    assert "Intensity from</a>: Must be from 1 to 5" in html
    assert "Unknown value: meh" in html
    assert 'aria-invalid="true"' in html
    assert "Grief, held back" not in html


def test_search_page_empty_result(client, cat):
    html = client.get(reverse("catalogue"), {"emotion": "shame"}).content.decode()
    assert "Nothing matches all of these filters" in html


# --- Web: listing page ----------------------------------------------------------------------------


def test_listing_page_shows_terms_signature_and_arc(client, cat):
    response = client.get(reverse("catalogue_detail", args=[cat.grief.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Grief, held back" in html and "Ana Stage" in html
    assert "$500.00" in html
    assert "2-year license, worldwide, model training and evaluation and benchmarking" in html
    # The arc as an SVG timeline with its text alternative.
    assert '<svg class="cat-arc__svg"' in html and 'role="img"' in html
    assert re.search(r'<g class="cat-arc__seg emo-anger">\s*<rect x="0.0" ', html)
    assert re.search(r'<g class="cat-arc__seg emo-grief">\s*<rect x="400.0" ', html)
    assert "0 s to 0.8 s: Anger, intensity 3 of 5; 0.8 s to 2 s: Grief, intensity 5 of 5" in html
    assert "<caption" in html and "breaks" in html
    assert "Sob" in html
    # Anonymous buyers are asked to sign in; there is no checkout stub.
    assert "Sign in as a buyer to license" in html
    # No preview yet, and never the original file.
    assert "The preview is being prepared" in html
    assert cat.recordings["grief"].file.name not in html
    assert "/media/" not in html


def test_listing_page_for_a_signed_in_buyer_offers_the_cart(client, cat, member):
    client.force_login(member)
    html = client.get(reverse("catalogue_detail", args=[cat.pack.pk])).content.decode()
    assert "Pack of 2 recordings" in html
    assert "Footsteps" in html and "Exhale" in html
    assert "Sign in as a buyer to license" not in html
    assert "Add to cart" in html and f'name="listing" value="{cat.pack.pk}"' in html
    assert "No timed arc was annotated" in html


# --- Who sees what --------------------------------------------------------------------------------

ANON, OTHER, OWNER, BUYER, STAFF = "anonymous", "other performer", "owner", "buyer", "staff"


@pytest.fixture
def people(cat):
    buyer_owner = make_user(email="boss@buyer.example")
    org = make_organization(owner=buyer_owner)
    buyer = make_user(email="staffer@buyer.example")
    Membership.objects.create(organization=org, user=buyer, role=Membership.Role.MEMBER)
    other = make_performer(email="other@example.com", stage_name="Other")
    return {
        OTHER: other.user,
        OWNER: cat.ana.user,
        BUYER: buyer,
        STAFF: cat.reviewer,
    }


def _login(client, people, role):
    if role != ANON:
        client.force_login(people[role])


@pytest.mark.parametrize("role", [ANON, OTHER, OWNER, BUYER, STAFF])
def test_everyone_sees_the_public_catalogue_and_nothing_else(client, cat, people, role):
    draft = services.listing_create(
        performer=cat.ana,
        by=cat.ana.user,
        recording_ids=[cat.recordings["grief"].pk],
        terms=ListingTerms(title="Secret draft", price_minor=1000, permitted_uses=["evaluation"]),
    )
    _login(client, people, role)
    search = client.get(reverse("catalogue"))
    assert search.status_code == 200
    assert "Grief, held back" in search.content.decode()
    assert "Secret draft" not in search.content.decode()
    assert client.get(reverse("catalogue_detail", args=[cat.grief.pk])).status_code == 200
    # Not even the owner or staff see a draft in the catalogue.
    assert client.get(reverse("catalogue_detail", args=[draft.pk])).status_code == 404


def test_pages_read_in_a_fixed_number_of_queries(client, cat, django_assert_num_queries):
    with django_assert_num_queries(1):
        client.get(reverse("catalogue_detail", args=[cat.pack.pk]))
    cache.clear()
    with django_assert_num_queries(5):  # as the selector: nothing more for the template
        client.get(reverse("catalogue"), {"page_size": "3"})


def test_a_suspended_recording_takes_its_listing_out(client, cat):
    grief = cat.recordings["grief"]
    _give_preview(grief)
    services.recording_set_status(
        recording=grief, by=cat.reviewer, status=Recording.Status.SUSPENDED, reason="Claim."
    )
    assert cat.grief.pk not in as_set({})
    assert client.get(reverse("catalogue_detail", args=[cat.grief.pk])).status_code == 404
    assert client.get(reverse("catalogue_preview", args=[grief.uid])).status_code == 404
    services.recording_set_status(recording=grief, by=cat.reviewer, status="active")
    assert cat.grief.pk in as_set({})


def test_listing_page_404_for_anything_not_for_sale(client, cat):
    services.listing_unpublish(listing=cat.anger, by=cat.ana.user)
    services.consent_withdraw(recording=cat.recordings["fear"], by=cat.ben.user)
    for listing in (cat.anger, cat.pack):
        assert client.get(reverse("catalogue_detail", args=[listing.pk])).status_code == 404
    assert client.get(reverse("catalogue_detail", args=[999_999])).status_code == 404


# --- Preview playback -----------------------------------------------------------------------------


def _ogg_preview(seconds: float = 1.0) -> bytes:
    rate = 8000
    t = np.arange(int(seconds * rate)) / rate
    buffer = io.BytesIO()
    soundfile.write(buffer, 0.3 * np.sin(2 * np.pi * 330 * t), rate, format="OGG")
    return buffer.getvalue()


def _give_preview(recording: Recording) -> bytes:
    data = _ogg_preview()
    recording.preview.save("preview.ogg", ContentFile(data), save=False)
    recording.preview_status = Recording.PreviewStatus.READY
    recording.save(update_fields=["preview", "preview_status"])
    return data


def _body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_preview_streams_the_preview_never_the_original(client, cat):
    recording = cat.recordings["grief"]
    data = _give_preview(recording)
    url = reverse("catalogue_preview", args=[recording.uid])
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "audio/ogg"
    assert response["Accept-Ranges"] == "bytes"
    assert int(response["Content-Length"]) == len(data)
    body = _body(response)
    assert body == data
    with recording.file.open("rb") as original:
        assert body != original.read()
    # The listing page plays it.
    html = client.get(reverse("catalogue_detail", args=[cat.grief.pk])).content.decode()
    assert f'<source src="{url}" type="audio/ogg">' in html
    assert '<audio controls preload="none"' in html


def test_preview_made_by_the_platform_plays(client, cat):
    """The real preview pipeline (an MP3 excerpt) served as audio/mpeg."""
    from marketplace.services.recordings import recording_preview_build

    recording = recording_preview_build(cat.recordings["anger"])
    assert recording.preview_status == Recording.PreviewStatus.READY
    response = client.get(reverse("catalogue_preview", args=[recording.uid]))
    assert response.status_code == 200
    assert response["Content-Type"] == "audio/mpeg"
    body = _body(response)
    with recording.preview.open("rb") as preview, recording.file.open("rb") as original:
        assert body == preview.read()
        assert body != original.read()


def test_preview_supports_a_single_byte_range(client, cat):
    recording = cat.recordings["grief"]
    data = _give_preview(recording)
    url = reverse("catalogue_preview", args=[recording.uid])
    response = client.get(url, headers={"Range": "bytes=10-29"})
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes 10-29/{len(data)}"
    assert response["Content-Length"] == "20"
    assert _body(response) == data[10:30]
    tail = client.get(url, headers={"Range": "bytes=-16"})
    assert tail.status_code == 206 and _body(tail) == data[-16:]
    open_ended = client.get(url, headers={"Range": f"bytes={len(data) - 5}-"})
    assert _body(open_ended) == data[-5:]
    assert open_ended["Content-Range"] == f"bytes {len(data) - 5}-{len(data) - 1}/{len(data)}"
    beyond = client.get(url, headers={"Range": f"bytes={len(data) + 10}-"})
    assert beyond.status_code == 416 and beyond["Content-Range"] == f"bytes */{len(data)}"
    several = client.get(url, headers={"Range": "bytes=0-1,5-9"})
    assert several.status_code == 200 and _body(several) == data


def test_preview_404_unless_published_and_ready(client, cat):
    grief = cat.recordings["grief"]
    url = reverse("catalogue_preview", args=[grief.uid])
    assert client.get(url).status_code == 404  # no preview yet
    grief.preview_status = Recording.PreviewStatus.FAILED
    grief.save(update_fields=["preview_status"])
    assert client.get(url).status_code == 404
    _give_preview(grief)
    assert client.get(url).status_code == 200
    services.listing_unpublish(listing=cat.grief, by=cat.ana.user)
    assert client.get(url).status_code == 404
    # Never listed at all.
    lonely = make_sellable_recording(cat.ana, title="Unlisted")
    _give_preview(lonely)
    assert client.get(reverse("catalogue_preview", args=[lonely.uid])).status_code == 404
    assert client.get(reverse("catalogue_preview", args=["REC-NOPE"])).status_code == 404
