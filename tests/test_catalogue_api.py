"""GET /api/v1/catalogue/ and /api/v1/catalogue/<id>/: public, filterable,
one error shape, and never an original file."""

from __future__ import annotations

import json

import pytest
from django.core.cache import cache
from django.core.files.base import ContentFile

from accounts.services import api_key_create
from marketplace import services
from marketplace.models import Recording
from marketplace.services import ListingTerms
from tests.test_catalogue import ANON, BUYER, OTHER, OWNER, STAFF, build_catalogue, people  # noqa: F401

pytestmark = pytest.mark.django_db

LIST = "/api/v1/catalogue/"


def detail(pk) -> str:
    return f"/api/v1/catalogue/{pk}/"


@pytest.fixture
def cat():
    return build_catalogue()


def test_anonymous_search_returns_listings_with_facets(client, cat):
    response = client.get(LIST)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 4 and body["count_exact"] is True
    assert body["page"] == 1 and body["page_size"] == 20 and body["num_pages"] == 1
    assert body["next"] is None and body["previous"] is None
    assert body["sort"] == "newest"
    assert [r["id"] for r in body["results"]] == [
        cat.pack.pk,
        cat.joy.pk,
        cat.anger.pk,
        cat.grief.pk,
    ]
    assert body["facets"]["emotion"]["grief"] == 1
    assert body["facets"]["authenticity"]["genuine"] == 3


def test_result_shape(client, cat):
    body = client.get(LIST, {"emotion": "grief"}).json()
    (result,) = body["results"]
    assert result["title"] == "Grief, held back"
    assert result["description"] == "A widow at the graveside."
    assert result["performer"] == {"id": cat.ana.pk, "stage_name": "Ana Stage"}
    assert result["price_minor"] == 50_000 and result["currency"] == "USD"
    terms = result["license_terms"]
    assert terms["summary"].startswith("2-year license, worldwide, model training")
    assert terms["duration_days"] == 730
    assert terms["permitted_uses"] == ["model_training", "evaluation"]
    assert terms["worldwide"] is True and terms["territories"] == []
    assert terms["sublicensing_allowed"] is False
    assert terms["attribution_required"] is False
    assert terms["revenue_share_bps"] == 2000
    assert terms["revenue_threshold_minor"] == 1_000_000
    assert terms["per_unit_rates"] == {} and terms["reuse_caps"] == {}
    (recording,) = result["recordings"]
    grief = cat.recordings["grief"]
    assert recording["uid"] == grief.uid
    assert recording["language"] == "en"
    assert recording["duration_seconds"] == 2.0
    assert recording["media_kind"] == "audio"
    assert recording["preview_url"] is None
    signature = recording["signature"]
    assert signature["primary_emotion"] == "grief"
    assert signature["intensity"] == 4
    assert signature["valence"] == -0.7 and signature["arousal"] == 0.6
    assert signature["authenticity"] == "genuine"
    assert signature["arc"][1] == {
        "start": 0.8,
        "end": 2.0,
        "emotion": "grief",
        "intensity": 5,
        "note": "breaks",
    }
    assert signature["vocal_events"] == ["sob"]
    assert signature["annotator"] == "self"
    assert signature["tags"] == ["widow", "funeral"]
    assert result["matched_recordings"] == [grief.uid]


def test_pack_result_lists_every_recording_and_which_matched(client, cat):
    body = client.get(LIST, {"emotion": "calm"}).json()
    (result,) = body["results"]
    assert [r["title"] for r in result["recordings"]] == ["Footsteps", "Exhale"]
    assert result["matched_recordings"] == [cat.recordings["calm"].uid]
    assert client.get(LIST, {"emotion": "fear", "intensity_max": "1"}).json()["count"] == 0


def test_terms_with_territories_rates_and_caps(client, cat):
    services.listing_update(
        listing=cat.anger,
        by=cat.ana.user,
        terms=ListingTerms(
            title="Road rage",
            price_minor=12_000,
            permitted_uses=["model_training"],
            worldwide=False,
            territories=["US", "CA"],
            attribution_required=True,
            per_unit_rates={"training_run": {"amount_minor": 500, "per": 1}},
            reuse_caps={"max_models_trained": 3},
        ),
    )
    terms = client.get(detail(cat.anger.pk)).json()["license_terms"]
    assert terms["worldwide"] is False and terms["territories"] == ["US", "CA"]
    assert terms["per_unit_rates"] == {"training_run": {"amount_minor": 500, "per": 1}}
    assert terms["reuse_caps"] == {"max_models_trained": 3}
    assert "$5.00 per training run" in terms["summary"]
    assert "at most 3 models trained" in terms["summary"]
    assert "attribution required" in terms["summary"]


def test_filters_through_the_api(client, cat):
    def ids(**params):
        return [r["id"] for r in client.get(LIST, params).json()["results"]]

    assert ids(emotion=["grief", "joy"]) == [cat.joy.pk, cat.grief.pk]
    assert ids(intensity_min=5, sort="price_asc") == [cat.anger.pk, cat.pack.pk]
    assert ids(language="es", use="model_training", territory="US") == [cat.anger.pk]
    assert ids(q="widows") == [cat.grief.pk]
    assert ids(price_min=10_000, price_max=60_000) == [cat.anger.pk, cat.grief.pk]
    assert ids(performer=cat.ben.pk, media_kind="audio") == [cat.pack.pk, cat.joy.pk]


def test_paging_links(client, cat):
    first = client.get(LIST, {"page_size": 3, "emotion": ["grief", "anger", "joy", "fear"]}).json()
    assert first["count"] == 4 and first["num_pages"] == 2
    assert first["next"].startswith("http://testserver/api/v1/catalogue/?")
    assert "page=2" in first["next"] and "emotion=fear" in first["next"]
    second = client.get(first["next"]).json()
    assert [r["id"] for r in second["results"]] == [cat.grief.pk]
    assert second["previous"] and "page=1" in second["previous"] and second["next"] is None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"intensity_min": 9}, "intensity_min"),
        ({"emotion": "melancholy"}, "emotion"),
        ({"intensity_min": 4, "intensity_max": 2}, "intensity_min"),
        ({"price_max": "cheap"}, "price_max"),
        ({"page_size": 500}, "page_size"),
        ({"territory": "Atlantis"}, "territory"),
    ],
)
def test_invalid_filter_is_a_400_with_the_error_shape(client, cat, params, field):
    response = client.get(LIST, params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == "invalid_filter"
    assert field in error["details"]["fields"]
    assert isinstance(error["details"]["fields"][field][0], str)


def test_detail_of_a_published_listing(client, cat):
    response = client.get(detail(cat.pack.pk))
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == cat.pack.pk and body["title"] == "Night walk pack"
    assert len(body["recordings"]) == 2
    assert "matched_recordings" not in body


def test_detail_is_404_for_anything_not_for_sale(client, cat):
    ana = cat.ana
    recording = cat.recordings["grief"]

    def new_listing(title):
        return services.listing_create(
            performer=ana,
            by=ana.user,
            recording_ids=[recording.pk],
            terms=ListingTerms(title=title, price_minor=1000, permitted_uses=["evaluation"]),
        )

    draft = new_listing("Draft")
    in_review = new_listing("In review")
    services.listing_submit(listing=in_review, by=ana.user)
    rejected = new_listing("Rejected")
    services.listing_submit(listing=rejected, by=ana.user)
    services.listing_review(listing=rejected, by=cat.reviewer, approve=False, reason="No.")
    services.listing_unpublish(listing=cat.anger, by=ana.user)
    services.consent_withdraw(recording=cat.recordings["joy"], by=cat.ben.user)
    for listing in (draft, in_review, rejected, cat.anger, cat.joy):
        response = client.get(detail(listing.pk))
        assert response.status_code == 404, listing.title
        assert response.json()["error"]["code"] == "listing_not_found"
    assert client.get(detail(987_654)).status_code == 404
    assert client.get(detail(cat.grief.pk)).status_code == 200


def test_never_an_original_file(client, cat):
    grief = cat.recordings["grief"]
    grief.preview.save("preview.ogg", ContentFile(b"OggS preview bytes"), save=False)
    grief.preview_status = Recording.PreviewStatus.READY
    grief.save(update_fields=["preview", "preview_status"])
    for url in (LIST, detail(cat.grief.pk)):
        raw = client.get(url).content.decode()
        for recording in cat.recordings.values():
            assert recording.file.name not in raw
            assert recording.sha256 not in raw
        assert "/media/" not in raw
        assert grief.preview.name not in raw  # not even the preview's storage path
    body = client.get(detail(cat.grief.pk)).json()
    assert body["recordings"][0]["preview_url"] == (
        f"http://testserver/catalogue/preview/{grief.uid}/"
    )
    keys = set(body["recordings"][0])
    assert keys == {
        "uid",
        "title",
        "language",
        "duration_seconds",
        "media_kind",
        "signature",
        "preview_url",
    }


@pytest.mark.parametrize("role", [ANON, OTHER, OWNER, BUYER, STAFF])
def test_every_role_sees_the_same_public_catalogue(client, cat, people, role):  # noqa: F811
    if role != ANON:
        client.force_login(people[role])
    body = client.get(LIST).json()
    assert body["count"] == 4
    assert client.get(detail(cat.grief.pk)).status_code == 200


def test_api_keys_may_search(client, cat, owner, organization):
    key = api_key_create(name="crawler", created_by=owner, organization=organization)
    response = client.get(LIST, headers={"Authorization": f"Bearer {key.secret}"})
    assert response.status_code == 200 and response.json()["count"] == 4
    bad = client.get(LIST, headers={"Authorization": "Bearer rsd_not_a_key"})
    assert bad.status_code == 401


def test_query_count_is_constant_over_page_sizes(client, cat, django_assert_num_queries):
    # count + page of ids + catalogue generation (one statement), the listings
    # with everything shown, which recordings matched, two facet counts (cold)
    for size in (1, 4):
        cache.clear()
        with django_assert_num_queries(5):
            response = client.get(LIST, {"page_size": size, "emotion": "grief,fear,anger,joy"})
        assert len(response.json()["results"]) == size
    # Warm: the facets come from the cache.
    with django_assert_num_queries(3):
        client.get(LIST, {"page_size": 2, "emotion": "grief,fear,anger,joy"})


def test_detail_is_one_query(client, cat, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert client.get(detail(cat.pack.pk)).status_code == 200


def test_data_matches_the_documented_schema(client, cat):
    """The response is built by hand for speed; the serializers document it.
    Both must name the same fields at every level."""
    from marketplace.serializers_catalogue import (
        CatalogueListingSerializer,
        CataloguePageSerializer,
        CatalogueRecordingSerializer,
        CatalogueResultSerializer,
        LicenseTermsSerializer,
        SignatureSerializer,
    )

    page = client.get(LIST).json()
    assert set(page) == set(CataloguePageSerializer().fields)
    result = next(r for r in page["results"] if r["id"] == cat.grief.pk)
    assert set(result) == set(CatalogueResultSerializer().fields)
    assert set(result["license_terms"]) == set(LicenseTermsSerializer().fields)
    assert set(result["recordings"][0]) == set(CatalogueRecordingSerializer().fields)
    assert set(result["recordings"][0]["signature"]) == set(SignatureSerializer().fields)
    assert set(result["recordings"][0]["signature"]["arc"][0]) == {
        "start",
        "end",
        "emotion",
        "intensity",
        "note",
    }
    one = client.get(detail(cat.grief.pk)).json()
    assert set(one) == set(CatalogueListingSerializer().fields)


def test_count_beyond_the_cap_is_a_lower_bound(client, cat, monkeypatch):
    from marketplace import selectors_catalogue

    monkeypatch.setattr(selectors_catalogue, "COUNT_EXACT_UP_TO", 3)
    body = client.get(LIST, {"page_size": 2}).json()
    assert body["count"] == 3 and body["count_exact"] is False and body["num_pages"] is None
    assert body["next"] and "page=2" in body["next"]


def test_openapi_documents_the_filters(client):
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = json.loads(response.content)
    operation = schema["paths"]["/api/v1/catalogue/"]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert {
        "q",
        "emotion",
        "intensity_min",
        "intensity_max",
        "authenticity",
        "valence_min",
        "arousal_max",
        "language",
        "performer",
        "duration_min",
        "use",
        "territory",
        "price_min",
        "price_max",
        "currency",
        "media_kind",
        "sort",
        "page",
        "page_size",
    } <= names
    assert operation["security"] and {} in operation["security"]  # anonymous allowed
    assert "/api/v1/catalogue/{listing_id}/" in schema["paths"]
