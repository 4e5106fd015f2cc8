"""Listings and splits: the terms' rules (duration, uses within consent,
money exactly), the lifecycle draft → in review → published → unpublished,
edits that apply to future sales only, and the performer's pages and API."""

from __future__ import annotations

from datetime import date

import pytest
from django import forms
from django.urls import reverse

from core.errors import Conflict, NotFound, ValidationError
from core.models import AuditEvent
from marketplace import services
from marketplace.forms import parse_major_units, parse_percent_to_bps
from marketplace.models import CatalogueEntry, Listing, RecordingSplit
from marketplace.services import ListingTerms
from tests.factories import make_performer
from tests.factories_marketplace import (
    make_published_listing,
    make_recording,
    make_sellable_recording,
)
from tests.listings_support import catalogue_snapshot, consent_for, make_staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def performer(db):
    return make_performer(email="cy@example.com", stage_name="Cy", legal_name="Cyrus Vale")


@pytest.fixture
def staff(db):
    return make_staff()


@pytest.fixture
def ready(performer):
    return make_sellable_recording(performer, title="Ready take")


def create(performer, recordings, **terms):
    values = {"title": "Pack", "price_minor": 50_000, "permitted_uses": ["model_training"]}
    values.update(terms)
    return services.listing_create(
        performer=performer,
        by=performer.user,
        recording_ids=[r.pk for r in recordings],
        terms=ListingTerms(**values),
    )


# --- Terms ----------------------------------------------------------------------------------


def test_default_duration_is_730_days(performer, ready):
    listing = create(performer, [ready])
    assert listing.duration_days == 730
    assert listing.revenue_share_bps == 2000
    assert listing.revenue_threshold_minor == 1_000_000
    assert listing.sublicensing_allowed is False
    assert listing.status == Listing.Status.DRAFT


@pytest.mark.parametrize("days", [0, 29, 1096, -5, "forever", 365.5])
def test_duration_out_of_range_is_refused(performer, ready, days):
    before = catalogue_snapshot()
    with pytest.raises(ValidationError) as exc:
        create(performer, [ready], duration_days=days)
    assert list(exc.value.details["fields"]) == ["duration_days"]
    assert catalogue_snapshot() == before


@pytest.mark.parametrize("days", [30, 1095])
def test_duration_bounds_are_allowed(performer, ready, days):
    assert create(performer, [ready], duration_days=days).duration_days == days


def test_uses_wider_than_consent_are_refused(performer, ready):
    before = catalogue_snapshot()
    with pytest.raises(ValidationError) as exc:
        create(performer, [ready], permitted_uses=["model_training", "synthetic_generation"])
    assert exc.value.code == "uses_exceed_consent"
    assert "permitted_uses" in exc.value.details["fields"]
    assert catalogue_snapshot() == before


def test_uses_must_fit_every_recording_in_a_pack(performer, ready):
    narrow = make_sellable_recording(performer, title="Narrow", uses=("evaluation",))
    with pytest.raises(ValidationError) as exc:
        create(performer, [ready, narrow], permitted_uses=["model_training"])
    assert exc.value.code == "uses_exceed_consent"
    assert narrow.uid in exc.value.message
    assert create(performer, [ready, narrow], permitted_uses=["evaluation"]).pk


@pytest.mark.parametrize(
    ("terms", "field"),
    [
        ({"title": "  "}, "title"),
        ({"price_minor": 50}, "price_minor"),
        ({"price_minor": 500.5}, "price_minor"),
        ({"currency": "JPY"}, "currency"),
        ({"revenue_share_bps": 10_001}, "revenue_share_bps"),
        ({"worldwide": False, "territories": []}, "territories"),
        ({"worldwide": False, "territories": ["XX"]}, "territories"),
        ({"per_unit_rates": {"downstream_revenue": {"amount_minor": 1}}}, "per_unit_rates"),
        ({"per_unit_rates": {"training_run": {"amount_minor": -1}}}, "per_unit_rates"),
        ({"reuse_caps": {"max_planets": 2}}, "reuse_caps"),
        ({"reuse_caps": {"max_models_trained": 0}}, "reuse_caps"),
        ({"sublicensing_allowed": "no"}, "sublicensing_allowed"),
    ],
)
def test_bad_terms_are_refused_naming_the_field(performer, ready, terms, field):
    before = catalogue_snapshot()
    with pytest.raises(ValidationError) as exc:
        create(performer, [ready], **terms)
    assert list(exc.value.details["fields"]) == [field]
    assert catalogue_snapshot() == before


def test_someone_elses_recording_cannot_be_listed(performer, ready):
    other = make_performer(email="o@example.com")
    theirs = make_sellable_recording(other, title="Theirs")
    with pytest.raises(ValidationError) as exc:
        create(performer, [ready, theirs])
    assert "recordings" in exc.value.details["fields"]
    assert not Listing.objects.exists()


# --- Money, exactly -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "minor"),
    [
        ("500", 50_000),
        ("500.00", 50_000),
        ("500.5", 50_050),
        ("0.29", 29),
        ("10,000.00", 1_000_000),
        ("1234567.89", 123_456_789),
        ("19.99", 1_999),  # 19.99 * 100 as a float is 1998.9999999999998
    ],
)
def test_major_units_are_parsed_exactly(text, minor):
    assert parse_major_units(text) == minor


@pytest.mark.parametrize("text", ["500.001", "5e2", "-5", "1,00", "abc", "", "500.", "$500"])
def test_bad_amounts_are_refused(text):
    with pytest.raises(forms.ValidationError):
        parse_major_units(text)


@pytest.mark.parametrize(
    ("text", "bps"), [("20", 2000), ("12.5", 1250), ("0.01", 1), ("100", 10_000)]
)
def test_percent_to_basis_points(text, bps):
    assert parse_percent_to_bps(text) == bps


@pytest.mark.parametrize("text", ["12.345", "101", "-1", "x"])
def test_bad_percent_is_refused(text):
    with pytest.raises(forms.ValidationError):
        parse_percent_to_bps(text)


# --- Lifecycle ---------------------------------------------------------------------------------


def test_missing_provenance_blocks_submit_with_problems(performer):
    recording = make_recording(performer, title="No date")  # provenance without a date
    consent_for(recording, allowed_uses=["model_training"])
    services.signature_save(
        recording=recording,
        by=performer.user,
        primary_emotion="joy",
        intensity=3,
        valence=0.5,
        arousal=0.5,
        authenticity="genuine",
    )
    listing = create(performer, [recording])
    with pytest.raises(ValidationError) as exc:
        services.listing_submit(listing=listing, by=performer.user)
    assert exc.value.code == "listing_not_ready"
    assert any("recording_date" in p for p in exc.value.details["problems"])
    listing.refresh_from_db()
    assert listing.status == Listing.Status.DRAFT


def test_sensitive_content_not_licensable_blocks_submit(performer, ready):
    listing = create(performer, [ready])
    consent_for(
        ready,
        allowed_uses=["model_training", "evaluation"],
        sensitive_content=["trauma"],
        sensitive_content_licensable=False,
    )
    with pytest.raises(ValidationError) as exc:
        services.listing_submit(listing=listing, by=performer.user)
    assert any("sensitive content" in p for p in exc.value.details["problems"])


def test_approve_publishes_and_unpublish_removes_from_catalogue(performer, ready, staff):
    listing = create(performer, [ready])
    services.listing_submit(listing=listing, by=performer.user)
    assert not CatalogueEntry.objects.exists()
    services.listing_review(listing=listing, by=staff, approve=True)
    listing.refresh_from_db()
    assert listing.status == Listing.Status.PUBLISHED
    assert listing.published_at is not None
    entry = CatalogueEntry.objects.get(listing=listing)
    assert entry.price_minor == 50_000
    assert entry.use_model_training and not entry.use_evaluation
    services.listing_unpublish(listing=listing, by=performer.user)
    listing.refresh_from_db()
    assert listing.status == Listing.Status.UNPUBLISHED
    assert not CatalogueEntry.objects.exists()


@pytest.mark.parametrize(
    ("status", "action"),
    [
        ("draft", "unpublish"),
        ("in_review", "submit"),
        ("published", "submit"),
        ("draft", "approve"),
        ("published", "approve"),
        ("unpublished", "unpublish"),
    ],
)
def test_transitions_not_allowed_are_conflicts(performer, ready, staff, status, action):
    listing = create(performer, [ready])
    Listing.objects.filter(pk=listing.pk).update(status=status)
    listing.refresh_from_db()
    calls = {
        "submit": lambda: services.listing_submit(listing=listing, by=performer.user),
        "unpublish": lambda: services.listing_unpublish(listing=listing, by=performer.user),
        "approve": lambda: services.listing_review(listing=listing, by=staff, approve=True),
    }
    with pytest.raises(Conflict) as exc:
        calls[action]()
    assert exc.value.status_code == 409
    assert exc.value.code == "invalid_listing_transition"
    listing.refresh_from_db()
    assert listing.status == status


def test_edit_of_a_published_listing_applies_to_future_sales(performer, ready, staff):
    listing = make_published_listing(performer, [ready], reviewer=staff, price_minor=50_000)
    services.listing_update(
        listing=listing,
        by=performer.user,
        terms=ListingTerms(
            title="Grief, held back", price_minor=75_000, permitted_uses=["model_training"]
        ),
    )
    listing.refresh_from_db()
    assert listing.status == Listing.Status.PUBLISHED
    assert listing.revision == 2
    assert CatalogueEntry.objects.get(listing=listing).price_minor == 75_000
    audit = AuditEvent.objects.get(action="listing.updated", target_id=str(listing.pk))
    assert audit.data["before"]["price_minor"] == 50_000
    assert audit.data["after"]["price_minor"] == 75_000
    assert audit.data["revision"] == 2


def test_changing_recordings_of_a_published_listing_sends_it_to_review(performer, ready, staff):
    other = make_sellable_recording(performer, title="Second")
    listing = make_published_listing(performer, [ready], reviewer=staff)
    services.listing_update(
        listing=listing,
        by=performer.user,
        terms=ListingTerms(
            title="Two takes", price_minor=50_000, permitted_uses=["model_training"]
        ),
        recording_ids=[ready.pk, other.pk],
    )
    listing.refresh_from_db()
    assert listing.status == Listing.Status.IN_REVIEW
    assert not CatalogueEntry.objects.filter(listing=listing).exists()


def test_a_performer_cannot_touch_anothers_listing(performer, ready):
    listing = create(performer, [ready])
    other = make_performer(email="p@example.com")
    terms = ListingTerms(title="Mine now", price_minor=100, permitted_uses=["model_training"])
    with pytest.raises(NotFound):
        services.listing_update(listing=listing, by=other.user, terms=terms)
    with pytest.raises(NotFound):
        services.listing_submit(listing=listing, by=other.user)
    with pytest.raises(NotFound):
        services.listing_unpublish(listing=listing, by=other.user)


# --- Splits ---------------------------------------------------------------------------------------


@pytest.fixture
def co_performer(db):
    return make_performer(email="dee@example.com", stage_name="Dee", legal_name="Dee Okafor")


def test_a_co_performer_gets_their_split(performer, ready, co_performer):
    services.splits_set(
        recording=ready, by=performer.user, shares=[(performer, 6000), (co_performer, 4000)]
    )
    shares = dict(
        RecordingSplit.objects.filter(recording=ready).values_list("performer", "share_bps")
    )
    assert shares == {performer.pk: 6000, co_performer.pk: 4000}


@pytest.mark.parametrize("shares", [[6000, 3000], [6000, 5000], [10_000, 0]])
def test_splits_must_sum_to_exactly_10000(performer, ready, co_performer, shares):
    before = catalogue_snapshot()
    with pytest.raises(ValidationError) as exc:
        services.splits_set(
            recording=ready,
            by=performer.user,
            shares=[(performer, shares[0]), (co_performer, shares[1])],
        )
    assert "splits" in exc.value.details["fields"]
    assert catalogue_snapshot() == before


def test_duplicate_performers_in_splits_are_refused(performer, ready):
    with pytest.raises(ValidationError) as exc:
        services.splits_set(
            recording=ready, by=performer.user, shares=[(performer, 5000), (performer, 5000)]
        )
    assert "appears twice" in exc.value.message


def test_splits_cannot_change_under_a_published_listing(performer, ready, co_performer, staff):
    make_published_listing(performer, [ready], reviewer=staff)
    with pytest.raises(Conflict):
        services.splits_set(
            recording=ready, by=performer.user, shares=[(performer, 5000), (co_performer, 5000)]
        )


def test_splits_page_adds_a_co_performer_by_email(client, performer, ready, co_performer):
    client.force_login(performer.user)
    url = reverse("recording_splits", args=[ready.uid])
    page = client.get(url)
    assert page.status_code == 200
    assert "100%" in page.content.decode()
    response = client.post(
        url,
        {
            "split_email": [performer.user.email, "DEE@example.com", ""],
            "split_bps": ["7500", "2500", ""],
        },
    )
    assert response.status_code == 302
    assert RecordingSplit.objects.get(recording=ready, performer=co_performer).share_bps == 2500


def test_splits_page_refuses_unknown_emails_and_bad_totals(client, performer, ready):
    client.force_login(performer.user)
    url = reverse("recording_splits", args=[ready.uid])
    response = client.post(
        url,
        {"split_email": [performer.user.email, "ghost@example.com"], "split_bps": ["5000", "5000"]},
    )
    assert response.status_code == 200
    assert "no performer uses ghost@example.com" in response.content.decode()
    response = client.post(url, {"split_email": [performer.user.email], "split_bps": ["9000"]})
    body = response.content.decode()
    assert "add up to 9000 basis points" in body
    assert "90%" in body
    assert RecordingSplit.objects.get(recording=ready).share_bps == 10_000


# --- Pages ----------------------------------------------------------------------------------------


def _form_data(recordings, **overrides):
    data = {
        "recordings": [r.uid for r in recordings],
        "title": "Hospital grief pack",
        "description": "Three takes.",
        "duration_days": "730",
        "permitted_uses": ["model_training"],
        "territory_scope": "worldwide",
        "price": "500.00",
        "currency": "USD",
        "revenue_share_percent": "20",
        "revenue_threshold": "10,000.00",
        "rate_training_run": "",
        "rate_fine_tune_run": "",
        "rate_evaluation_run": "",
        "rate_inference_calls": "0.25",
        "rate_deployment": "",
        "max_models_trained": "3",
    }
    data.update(overrides)
    return data


def test_new_listing_page_lists_only_ready_recordings_as_selectable(client, performer, ready):
    draft = make_recording(performer, title="Unfinished")
    client.force_login(performer.user)
    response = client.get(reverse("listing_new"))
    assert response.status_code == 200
    body = response.content.decode()
    assert f'value="{ready.uid}"' in body
    assert f'id="rec-{draft.uid}-why"' in body  # disabled, with the reason
    assert "Not selectable" in body
    assert 'value="730"' in body
    assert "2 years" in body


def test_new_listing_form_converts_money_exactly(client, performer, ready):
    client.force_login(performer.user)
    response = client.post(
        reverse("listing_new"),
        _form_data([ready], price="19.99", revenue_share_percent="12.5", revenue_threshold="2,500"),
    )
    assert response.status_code == 302, response.context["form"].errors
    listing = Listing.objects.get()
    assert listing.price_minor == 1999
    assert listing.revenue_share_bps == 1250
    assert listing.revenue_threshold_minor == 250_000
    assert listing.per_unit_rates == {"inference_calls": {"amount_minor": 25, "per": 1000}}
    assert listing.reuse_caps == {"max_models_trained": 3}
    assert listing.status == Listing.Status.DRAFT


def test_new_listing_form_refuses_three_decimals(client, performer, ready):
    client.force_login(performer.user)
    response = client.post(reverse("listing_new"), _form_data([ready], price="500.001"))
    assert response.status_code == 200
    assert "at most 2 decimal places" in response.content.decode()
    assert not Listing.objects.exists()


def test_new_listing_form_refuses_uses_beyond_consent(client, performer, ready):
    client.force_login(performer.user)
    response = client.post(
        reverse("listing_new"), _form_data([ready], permitted_uses=["synthetic_generation"])
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "may not exceed any recording’s consent" in body
    assert "Every chosen recording allows: Model training, Evaluation and benchmarking." in body
    assert not Listing.objects.exists()


def test_new_listing_form_refuses_a_recording_that_is_not_ready(client, performer, ready):
    draft = make_recording(performer, title="Unfinished")
    client.force_login(performer.user)
    response = client.post(reverse("listing_new"), _form_data([ready, draft]))
    assert response.status_code == 200
    assert "Not ready to list" in response.content.decode()
    assert not Listing.objects.exists()


def test_save_and_submit_sends_to_review(client, performer, ready):
    client.force_login(performer.user)
    response = client.post(reverse("listing_new"), _form_data([ready], submit_for_review="1"))
    assert response.status_code == 302
    assert Listing.objects.get().status == Listing.Status.IN_REVIEW


def test_edit_page_says_edits_apply_to_future_sales(client, performer, ready, staff):
    listing = make_published_listing(performer, [ready], reviewer=staff)
    client.force_login(performer.user)
    url = reverse("listing_edit", args=[listing.pk])
    page = client.get(url).content.decode()
    assert "Your changes apply to future sales only" in page
    assert 'value="500.00"' in page
    response = client.post(url, _form_data([ready], price="650.00"))
    assert response.status_code == 302
    listing.refresh_from_db()
    assert (listing.status, listing.price_minor, listing.revision) == ("published", 65_000, 2)
    assert CatalogueEntry.objects.get(listing=listing).price_minor == 65_000


def test_submit_and_unpublish_buttons(client, performer, ready, staff):
    listing = create(performer, [ready])
    client.force_login(performer.user)
    response = client.post(reverse("listing_submit", args=[listing.pk]))
    assert response.status_code == 302
    listing.refresh_from_db()
    assert listing.status == Listing.Status.IN_REVIEW
    response = client.post(reverse("listing_submit", args=[listing.pk]), follow=True)
    assert "cannot be submitted" in response.content.decode()
    services.listing_review(listing=listing, by=staff, approve=True)
    response = client.post(reverse("listing_unpublish", args=[listing.pk]))
    listing.refresh_from_db()
    assert listing.status == Listing.Status.UNPUBLISHED


def test_submit_page_shows_problems(client, performer):
    recording = make_recording(performer, title="No date")
    consent_for(recording, allowed_uses=["model_training"])
    listing = create(performer, [recording])
    client.force_login(performer.user)
    response = client.post(reverse("listing_submit", args=[listing.pk]), follow=True)
    body = response.content.decode()
    assert "Not sent to review yet" in body
    assert "missing provenance: recording_date" in body


def test_listing_pages_render(client, performer, ready):
    listing = create(performer, [ready], worldwide=False, territories=["DE", "fr"])
    client.force_login(performer.user)
    listing_page = client.get(reverse("listing_list"))
    assert listing_page.status_code == 200
    assert listing.title in listing_page.content.decode()
    detail = client.get(reverse("listing_detail", args=[listing.pk])).content.decode()
    assert "Germany, France" in detail
    assert "US$500.00" in detail
    assert "730 days" in detail


# --- The API --------------------------------------------------------------------------------------


def _api_body(recs, **overrides):
    body = {
        "recordings": [r.uid for r in recs],
        "title": "API pack",
        "permitted_uses": ["model_training"],
        "price_minor": 120_000,
    }
    body.update(overrides)
    return body


@pytest.fixture
def api_key(performer):
    from accounts.services import api_key_create

    return api_key_create(name="uploader", created_by=performer.user, performer=performer).secret


def test_api_create_list_patch_submit(client, performer, ready, api_key):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {api_key}"}
    response = client.post(
        "/api/v1/listings/", _api_body([ready]), content_type="application/json", **auth
    )
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["recordings"] == [ready.uid]
    assert created["duration_days"] == 730
    assert created["problems"] == []
    listed = client.get("/api/v1/listings/", **auth).json()
    assert [item["id"] for item in listed["results"]] == [created["id"]]
    response = client.patch(
        f"/api/v1/listings/{created['id']}/",
        {"price_minor": 99_000},
        content_type="application/json",
        **auth,
    )
    assert response.status_code == 200
    assert response.json()["price_minor"] == 99_000
    assert response.json()["title"] == "API pack"
    assert response.json()["revision"] == 2
    response = client.post(f"/api/v1/listings/{created['id']}/submit/", **auth)
    assert response.status_code == 200
    assert response.json()["status"] == "in_review"
    response = client.post(f"/api/v1/listings/{created['id']}/submit/", **auth)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invalid_listing_transition"


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"duration_days": 1096}, "duration_days", "duration_out_of_range"),
        ({"permitted_uses": ["synthetic_generation"]}, "permitted_uses", "uses_exceed_consent"),
        ({"recordings": ["REC-0000000000"]}, "recordings", "not_found"),
        ({"price_minor": "500.00"}, "price_minor", "validation_error"),
        ({"colour": "blue"}, "colour", "validation_error"),
    ],
)
def test_api_create_errors_name_the_field(client, performer, ready, overrides, field, code):
    client.force_login(performer.user)
    response = client.post(
        "/api/v1/listings/", _api_body([ready], **overrides), content_type="application/json"
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == code
    assert field in error["details"]["fields"]
    assert not Listing.objects.exists()


def test_api_submit_not_ready_lists_problems(client, performer):
    recording = make_recording(performer, title="No date")
    consent_for(recording, allowed_uses=["model_training"])
    client.force_login(performer.user)
    created = client.post(
        "/api/v1/listings/", _api_body([recording]), content_type="application/json"
    ).json()
    assert created["problems"]
    response = client.post(f"/api/v1/listings/{created['id']}/submit/")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "listing_not_ready"
    assert error["details"]["problems"]


def test_api_listing_list_query_count_is_constant(
    client, performer, ready, django_assert_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(performer.user)
    create(performer, [ready])
    with CaptureQueriesContext(connection) as one:
        assert client.get("/api/v1/listings/").status_code == 200
    for n in range(4):
        create(performer, [ready], title=f"More {n}")
    with django_assert_num_queries(len(one)):
        assert len(client.get("/api/v1/listings/").json()["results"]) == 5


def test_provenance_date_in_the_future_is_refused(performer, ready):
    with pytest.raises(ValidationError) as exc:
        services.provenance_save(
            recording=ready,
            by=performer.user,
            performer_name="Cyrus Vale",
            performer_contact="cy@example.com",
            recording_date=date(2999, 1, 1),
        )
    assert list(exc.value.details["fields"]) == ["recording_date"]


# --- The API: unpublish and splits ---------------------------------------------------------------


def test_api_unpublish_takes_a_published_listing_off_sale(client, performer, ready, staff, api_key):
    listing = make_published_listing(performer, [ready], reviewer=staff)
    assert CatalogueEntry.objects.filter(listing=listing).exists()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {api_key}"}

    response = client.post(f"/api/v1/listings/{listing.pk}/unpublish/", **auth)

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "unpublished"
    assert response.json()["rejection_reason"] == ""
    assert not CatalogueEntry.objects.filter(listing=listing).exists()
    audit = AuditEvent.objects.get(action="listing.unpublished", target_id=str(listing.pk))
    assert audit.actor == performer.user and audit.actor_api_key_prefix

    again = client.post(f"/api/v1/listings/{listing.pk}/unpublish/", **auth)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "invalid_listing_transition"


def test_api_unpublish_of_a_draft_is_a_conflict(client, performer, ready):
    listing = create(performer, [ready])
    client.force_login(performer.user)
    response = client.post(f"/api/v1/listings/{listing.pk}/unpublish/")
    assert response.status_code == 409
    listing.refresh_from_db()
    assert listing.status == Listing.Status.DRAFT


def put_splits(client, recording, splits, **extra):
    return client.put(
        f"/api/v1/recordings/{recording.uid}/splits/",
        {"splits": splits},
        content_type="application/json",
        **extra,
    )


def test_api_splits_are_replaced(client, performer, ready, co_performer, api_key):
    response = put_splits(
        client,
        ready,
        [
            {"email": "DEE@example.com", "share_bps": 4000},
            {"email": performer.user.email, "share_bps": 6000},
        ],
        HTTP_AUTHORIZATION=f"Bearer {api_key}",
    )
    assert response.status_code == 200, response.content
    assert response.json() == {
        "recording": ready.uid,
        "splits": [
            {"email": performer.user.email, "stage_name": "Cy", "share_bps": 6000},
            {"email": "dee@example.com", "stage_name": "Dee", "share_bps": 4000},
        ],
        "total_bps": 10_000,
    }
    shares = dict(
        RecordingSplit.objects.filter(recording=ready).values_list("performer", "share_bps")
    )
    assert shares == {performer.pk: 6000, co_performer.pk: 4000}
    assert AuditEvent.objects.filter(action="splits.set", target_id=str(ready.pk)).exists()


@pytest.mark.parametrize(
    ("splits", "code"),
    [
        (
            [
                {"email": "cy@example.com", "share_bps": 6000},
                {"email": "dee@example.com", "share_bps": 3000},
            ],
            "splits_not_100_percent",
        ),
        (
            [
                {"email": "cy@example.com", "share_bps": 6000},
                {"email": "dee@example.com", "share_bps": 5000},
            ],
            "splits_not_100_percent",
        ),
        (
            [
                {"email": "cy@example.com", "share_bps": 10_000},
                {"email": "dee@example.com", "share_bps": 0},
            ],
            "invalid_share",
        ),
        (
            [
                {"email": "cy@example.com", "share_bps": "60%"},
                {"email": "dee@example.com", "share_bps": 4000},
            ],
            "invalid_share",
        ),
        (
            [
                {"email": "cy@example.com", "share_bps": 5000.0},
                {"email": "dee@example.com", "share_bps": 5000},
            ],
            "invalid_share",
        ),
        (
            [
                {"email": "cy@example.com", "share_bps": 5000},
                {"email": "CY@example.com", "share_bps": 5000},
            ],
            "duplicate_performer",
        ),
        (
            [
                {"email": "cy@example.com", "share_bps": 5000},
                {"email": "nobody@example.com", "share_bps": 5000},
            ],
            "unknown_performer",
        ),
        ([], "splits_empty"),
        ([{"email": "cy@example.com"}], "validation_error"),
        ([{"email": "cy@example.com", "share_bps": 10_000, "role": "lead"}], "validation_error"),
        ("cy@example.com", "validation_error"),
        ([["cy@example.com", 10_000]], "validation_error"),
    ],
)
def test_api_bad_splits_are_refused_with_a_code_and_change_nothing(
    client, performer, ready, co_performer, splits, code
):
    client.force_login(performer.user)
    before = catalogue_snapshot()
    response = put_splits(client, ready, splits)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == code
    assert "splits" in error["details"]["fields"]
    assert catalogue_snapshot() == before


def test_api_unknown_co_performers_are_named(client, performer, ready):
    client.force_login(performer.user)
    response = put_splits(
        client,
        ready,
        [
            {"email": "cy@example.com", "share_bps": 5000},
            {"email": "ghost@example.com", "share_bps": 5000},
        ],
    )
    error = response.json()["error"]
    assert error["details"]["emails"] == ["ghost@example.com"]
    assert "ghost@example.com" in error["message"]


def test_api_splits_cannot_change_under_a_published_listing(
    client, performer, ready, co_performer, staff
):
    make_published_listing(performer, [ready], reviewer=staff)
    client.force_login(performer.user)
    response = put_splits(
        client,
        ready,
        [
            {"email": "cy@example.com", "share_bps": 5000},
            {"email": "dee@example.com", "share_bps": 5000},
        ],
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "recording_listed"
    assert RecordingSplit.objects.get(recording=ready).share_bps == 10_000


def test_the_schema_documents_the_new_listing_endpoints(client):
    schema = client.get("/api/schema/?format=json").json()
    paths = schema["paths"]
    assert "post" in paths["/api/v1/listings/{listing_id}/unpublish/"]
    assert "post" in paths["/api/v1/listings/{listing_id}/review/"]
    assert "post" in paths["/api/v1/recordings/{uid}/consent/withdraw/"]
    splits = paths["/api/v1/recordings/{uid}/splits/"]["put"]
    assert "splits_not_100_percent" in splits["responses"]["400"]["description"]
    assert "409" in splits["responses"]
    review = paths["/api/v1/listings/{listing_id}/review/"]["post"]
    assert "mfa_required" in review["responses"]["403"]["description"]
