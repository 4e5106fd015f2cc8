"""Staff review of listings: approve publishes, reject needs a reason the
performer sees, and the queue shows reviewers everything they need."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.errors import PermissionDenied, ValidationError
from core.models import AuditEvent
from marketplace import services
from marketplace.models import CatalogueEntry, Listing
from marketplace.services import ListingTerms
from tests.factories import make_performer, make_user
from tests.factories_marketplace import make_recording, make_sellable_recording
from tests.listings_support import consent_for, give_mfa_session, make_staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def performer(db):
    return make_performer(email="di@example.com", stage_name="Di", legal_name="Diana Prince")


@pytest.fixture
def staff(db):
    return make_staff()


def submitted(performer, title="Pack", recordings=None):
    recordings = recordings or [make_sellable_recording(performer, title=f"{title} take")]
    listing = services.listing_create(
        performer=performer,
        by=performer.user,
        recording_ids=[r.pk for r in recordings],
        terms=ListingTerms(title=title, price_minor=40_000, permitted_uses=["evaluation"]),
    )
    services.listing_submit(listing=listing, by=performer.user)
    listing.refresh_from_db()
    return listing


# --- The service -----------------------------------------------------------------------------


def test_reject_needs_a_reason_and_the_performer_sees_it(client, performer, staff):
    listing = submitted(performer)
    with pytest.raises(ValidationError) as exc:
        services.listing_review(listing=listing, by=staff, approve=False, reason="   ")
    assert list(exc.value.details["fields"]) == ["reason"]
    listing.refresh_from_db()
    assert listing.status == Listing.Status.IN_REVIEW

    services.listing_review(
        listing=listing, by=staff, approve=False, reason="The title names a real hospital."
    )
    listing.refresh_from_db()
    assert listing.status == Listing.Status.REJECTED
    assert listing.reviewed_by == staff
    client.force_login(performer.user)
    page = client.get(reverse("listing_detail", args=[listing.pk])).content.decode()
    assert "Staff asked for changes" in page
    assert "The title names a real hospital." in page
    dashboard = client.get(reverse("performer_dashboard")).content.decode()
    assert "The title names a real hospital." in dashboard
    # Resubmitting clears the reason.
    services.listing_submit(listing=listing, by=performer.user)
    listing.refresh_from_db()
    assert (listing.status, listing.rejection_reason) == ("in_review", "")


def test_approve_publishes_and_creates_catalogue_entries(performer, staff):
    recordings = [make_sellable_recording(performer, title=f"T{i}") for i in range(2)]
    listing = submitted(performer, recordings=recordings)
    services.listing_review(listing=listing, by=staff, approve=True)
    listing.refresh_from_db()
    assert listing.status == Listing.Status.PUBLISHED
    assert set(
        CatalogueEntry.objects.filter(listing=listing).values_list("recording", flat=True)
    ) == {r.pk for r in recordings}
    assert AuditEvent.objects.filter(
        action="listing.published", actor=staff, target_id=str(listing.pk)
    ).exists()


def test_approve_refuses_a_listing_that_became_unready(performer, staff):
    listing = submitted(performer)
    recording = listing.recordings.get()
    # Between submission and review the performer blanked the provenance.
    services.provenance_save(
        recording=recording,
        by=performer.user,
        performer_name="",
        performer_contact="di@example.com",
        recording_date=None,
    )
    with pytest.raises(ValidationError) as exc:
        services.listing_review(listing=listing, by=staff, approve=True)
    assert exc.value.code == "listing_not_ready"
    assert any("performer_name" in p for p in exc.value.details["problems"])
    listing.refresh_from_db()
    assert listing.status == Listing.Status.IN_REVIEW
    assert not CatalogueEntry.objects.exists()


def test_narrowing_consent_during_review_takes_the_listing_out_of_review(performer, staff):
    listing = submitted(performer)
    consent_for(listing.recordings.get(), allowed_uses=["model_training"])
    listing.refresh_from_db()
    assert listing.status == Listing.Status.UNPUBLISHED
    assert "Evaluation and benchmarking" in listing.rejection_reason


def test_only_staff_review(performer):
    listing = submitted(performer)
    with pytest.raises(PermissionDenied):
        services.listing_review(listing=listing, by=performer.user, approve=True)


# --- The queue --------------------------------------------------------------------------------


def test_queue_shows_what_a_reviewer_needs_oldest_first(client, performer, staff):
    first = submitted(performer, title="First in")
    second = submitted(performer, title="Second in")
    draft_recording = make_recording(performer, title="Rough")
    consent_for(draft_recording, allowed_uses=["evaluation"])
    give_mfa_session(client, staff)
    response = client.get(reverse("staff_listing_review"))
    assert response.status_code == 200
    body = response.content.decode()
    assert body.index("First in") < body.index("Second in")
    text = services.consent_text_current()
    assert text.version in body
    assert "Evaluation and benchmarking" in body
    assert performer.legal_name in body
    assert "Recorded 1 Oct 2026" in body
    assert "No problems found" in body
    assert reverse("staff_listing_approve", args=[first.pk]) in body
    assert reverse("staff_listing_reject", args=[second.pk]) in body


def test_queue_shows_problems(client, performer, staff):
    listing = submitted(performer)
    recording = listing.recordings.get()
    services.provenance_save(
        recording=recording,
        by=performer.user,
        performer_name="",
        performer_contact="di@example.com",
        recording_date=None,
    )
    give_mfa_session(client, staff)
    body = client.get(reverse("staff_listing_review")).content.decode()
    assert "missing provenance: performer_name, recording_date" in body


def test_queue_query_count_does_not_grow(client, performer, staff, django_assert_num_queries):
    submitted(performer, title="One")
    give_mfa_session(client, staff)
    with CaptureQueriesContext(connection) as one:
        client.get(reverse("staff_listing_review"))
    for i in range(3):
        submitted(performer, title=f"More {i}")
    with django_assert_num_queries(len(one)):
        assert client.get(reverse("staff_listing_review")).status_code == 200


def test_approve_and_reject_buttons(client, performer, staff):
    good = submitted(performer, title="Good")
    bad = submitted(performer, title="Bad")
    give_mfa_session(client, staff)
    response = client.post(reverse("staff_listing_approve", args=[good.pk]))
    assert response.status_code == 302
    good.refresh_from_db()
    assert good.status == Listing.Status.PUBLISHED

    response = client.post(reverse("staff_listing_reject", args=[bad.pk]), follow=True)
    assert "Tell the performer what to change." in response.content.decode()
    bad.refresh_from_db()
    assert bad.status == Listing.Status.IN_REVIEW

    client.post(reverse("staff_listing_reject", args=[bad.pk]), {f"l{bad.pk}-reason": "Too quiet."})
    bad.refresh_from_db()
    assert (bad.status, bad.rejection_reason) == ("rejected", "Too quiet.")


def test_staff_without_mfa_are_sent_to_set_it_up(client, staff):
    client.force_login(staff)
    response = client.get(reverse("staff_listing_review"))
    assert response.status_code == 302
    assert reverse("mfa_activate_totp") in response.url


def test_non_staff_get_403_on_the_queue(client, performer):
    client.force_login(performer.user)
    assert client.get(reverse("staff_listing_review")).status_code == 403
    buyer = make_user(email="buyer@acme.example")
    client.force_login(buyer)
    assert client.get(reverse("staff_listing_review")).status_code == 403


# --- The API: POST /api/v1/listings/<id>/review/ ----------------------------------------------


def review(client, listing, body, **extra):
    return client.post(
        f"/api/v1/listings/{listing.pk}/review/", body, content_type="application/json", **extra
    )


def test_api_approve_publishes_through_the_service(client, performer, staff):
    listing = submitted(performer)
    give_mfa_session(client, staff)

    response = review(client, listing, {"decision": "approve"})

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "published" and body["published_at"]
    assert body["recordings"] == [item.recording.uid for item in listing.items.all()]
    listing.refresh_from_db()
    assert listing.reviewed_by == staff
    assert CatalogueEntry.objects.filter(listing=listing).count() == 1
    audit = AuditEvent.objects.get(action="listing.published", target_id=str(listing.pk))
    assert audit.actor == staff


def test_api_reject_needs_a_reason_the_performer_then_sees(client, performer, staff):
    listing = submitted(performer)
    give_mfa_session(client, staff)

    response = review(client, listing, {"decision": "reject", "reason": "  "})
    assert response.status_code == 400
    assert list(response.json()["error"]["details"]["fields"]) == ["reason"]
    listing.refresh_from_db()
    assert listing.status == Listing.Status.IN_REVIEW

    response = review(client, listing, {"decision": "reject", "reason": "Crop the silence."})
    assert response.status_code == 200
    assert response.json()["status"] == "rejected"
    assert response.json()["rejection_reason"] == "Crop the silence."

    client.force_login(performer.user)
    mine = client.get(f"/api/v1/listings/{listing.pk}/").json()
    assert mine["rejection_reason"] == "Crop the silence."


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({}, 400, "validation_error", "decision"),
        ({"decision": "publish"}, 400, "unknown_choice", "decision"),
        ({"decision": ["approve"]}, 400, "unknown_choice", "decision"),
        ({"decision": "reject", "reason": 7}, 400, "validation_error", "reason"),
        ({"decision": "approve", "note": "x"}, 400, "validation_error", "note"),
    ],
)
def test_api_review_refuses_bad_bodies_and_changes_nothing(
    client, performer, staff, body, status, code, field
):
    listing = submitted(performer)
    give_mfa_session(client, staff)
    response = review(client, listing, body)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code
    assert field in error["details"]["fields"]
    listing.refresh_from_db()
    assert listing.status == Listing.Status.IN_REVIEW


def test_api_review_of_a_listing_not_in_review_is_a_conflict(client, performer, staff):
    listing = submitted(performer)
    services.listing_review(listing=listing, by=staff, approve=True)
    give_mfa_session(client, staff)
    response = review(client, listing, {"decision": "approve"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invalid_listing_transition"


def test_api_approve_of_an_unready_listing_names_the_problems(client, performer, staff):
    listing = submitted(performer)
    services.provenance_save(
        recording=listing.recordings.get(),
        by=performer.user,
        performer_name="",
        performer_contact="di@example.com",
        recording_date=None,
    )
    give_mfa_session(client, staff)
    response = review(client, listing, {"decision": "approve"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "listing_not_ready"
    assert any("performer_name" in p for p in error["details"]["problems"])
    listing.refresh_from_db()
    assert listing.status == Listing.Status.IN_REVIEW


def test_api_review_needs_a_second_factor_and_never_takes_a_key(client, performer, staff):
    from accounts.services import api_key_create

    listing = submitted(performer)
    client.force_login(staff)  # signed in, but no second factor in this session
    response = review(client, listing, {"decision": "approve"})
    assert (response.status_code, response.json()["error"]["code"]) == (403, "mfa_required")

    staff_performer = make_performer(email=staff.email, user=staff)
    key = api_key_create(name="k", created_by=staff, performer=staff_performer).secret
    client.logout()
    response = review(client, listing, {"decision": "approve"}, HTTP_AUTHORIZATION=f"Bearer {key}")
    assert (response.status_code, response.json()["error"]["code"]) == (403, "staff_required")
    listing.refresh_from_db()
    assert listing.status == Listing.Status.IN_REVIEW


def test_api_review_of_a_missing_listing_is_404(client, staff):
    give_mfa_session(client, staff)
    response = client.post(
        "/api/v1/listings/987654/review/", {"decision": "approve"}, content_type="application/json"
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
