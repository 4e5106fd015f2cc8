"""Consent: the exact text version and its hash are stored, an outdated
version or a wrong signature is refused, and withdrawal stops sales at once."""

from __future__ import annotations

import hashlib

import pytest
from django.urls import reverse

from core.errors import Conflict, NotFound, ValidationError
from core.models import AuditEvent
from marketplace import services
from marketplace.consent_texts import CURRENT_VERSION, TEXTS
from marketplace.models import CatalogueEntry, ConsentEvent, ConsentRecord, Listing
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
    return make_performer(email="ana@example.com", stage_name="Ana", legal_name="Ana María Ruiz")


@pytest.fixture
def recording(performer):
    return make_recording(performer, title="Hospital monologue")


# --- The text and its version ------------------------------------------------------------


def test_consent_stores_exact_text_version_and_hash(recording):
    consent = consent_for(recording)
    text = services.consent_text_current()
    assert text.version == CURRENT_VERSION
    assert text.body == TEXTS[CURRENT_VERSION]
    assert consent.consent_text == text
    assert (
        consent.consent_text_sha256 == hashlib.sha256(TEXTS[CURRENT_VERSION].encode()).hexdigest()
    )
    assert consent.ip_address == "198.51.100.4"
    assert consent.signed_by == recording.performer.user
    given = ConsentEvent.objects.get(consent=consent)
    assert given.kind == ConsentEvent.Kind.GIVEN
    assert given.data["version"] == CURRENT_VERSION
    assert AuditEvent.objects.filter(action="consent.given", target_id=str(recording.pk)).exists()


def test_outdated_text_version_is_refused_and_nothing_saved(recording):
    before = catalogue_snapshot()
    with pytest.raises(ValidationError) as exc:
        consent_for(recording, consent_text_version="2025-01-v0")
    assert exc.value.code == "consent_text_outdated"
    assert "consent_text_version" in exc.value.details["fields"]
    assert catalogue_snapshot() == before


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"signature_name": "Someone Else"}, "signature_name", "signature_mismatch"),
        ({"signature_name": "   "}, "signature_name", "validation_error"),
        ({"allowed_uses": []}, "allowed_uses", "validation_error"),
        ({"allowed_uses": ["mind_reading"]}, "allowed_uses", "unknown_choice"),
        ({"allowed_uses": ["research_only", "model_training"]}, "allowed_uses", "conflicting_uses"),
        ({"sensitive_content": ["gore"]}, "sensitive_content", "unknown_choice"),
        ({"sensitive_content_licensable": "yes"}, "sensitive_content_licensable", None),
    ],
)
def test_bad_consent_is_refused_naming_the_field(recording, overrides, field, code):
    before = catalogue_snapshot()
    with pytest.raises(ValidationError) as exc:
        consent_for(recording, **overrides)
    assert field in exc.value.details["fields"]
    if code:
        assert exc.value.code == code
    assert catalogue_snapshot() == before


def test_signature_matches_legal_name_ignoring_case_and_spacing(recording):
    consent = consent_for(recording, signature_name="  ana   maría RUIZ ")
    assert consent.signature_name == "ana maría RUIZ"


def test_research_only_alone_is_allowed(recording):
    consent = consent_for(recording, allowed_uses=["research_only"])
    assert consent.allowed_uses == ["research_only"]


def test_another_performer_cannot_consent_for_my_recording(recording):
    other = make_performer(email="eve@example.com", legal_name="Eve Other")
    with pytest.raises(NotFound):
        consent_for(recording, by=other.user, signature_name="Eve Other")
    assert not ConsentRecord.objects.exists()


def test_new_consent_supersedes_the_current_one(recording):
    first = consent_for(recording)
    second = consent_for(recording, allowed_uses=["evaluation"])
    first.refresh_from_db()
    assert first.superseded_at is not None
    assert second.superseded_at is None
    kinds = list(ConsentEvent.objects.filter(consent=first).values_list("kind", flat=True))
    assert kinds == ["given", "superseded"]


# --- Withdrawal ----------------------------------------------------------------------------


@pytest.fixture
def listed(performer):
    staff = make_staff()
    recording = make_sellable_recording(performer, title="Grief take")
    listing = make_published_listing(performer, [recording], reviewer=staff)
    assert CatalogueEntry.objects.filter(listing=listing).count() == 1
    return recording, listing


def test_withdrawal_unpublishes_listings_and_empties_the_catalogue_at_once(listed):
    recording, listing = listed
    consent = services.consent_withdraw(
        recording=recording, by=recording.performer.user, reason="Changed my mind"
    )
    listing.refresh_from_db()
    assert listing.status == Listing.Status.UNPUBLISHED
    assert "withdrawn" in listing.rejection_reason
    assert not CatalogueEntry.objects.filter(recording=recording).exists()
    assert consent.withdrawn_at is not None
    event = ConsentEvent.objects.get(consent=consent, kind=ConsentEvent.Kind.WITHDRAWN)
    assert event.data["reason"] == "Changed my mind"
    assert AuditEvent.objects.filter(
        action="consent.withdrawn", target_id=str(recording.pk)
    ).exists()
    assert AuditEvent.objects.filter(
        action="listing.unpublished", target_id=str(listing.pk)
    ).exists()
    assert not services.listing_is_for_sale(listing)


def test_withdrawing_twice_is_a_conflict(listed):
    recording, _ = listed
    services.consent_withdraw(recording=recording, by=recording.performer.user)
    events = ConsentEvent.objects.count()
    with pytest.raises(Conflict) as exc:
        services.consent_withdraw(recording=recording, by=recording.performer.user)
    assert exc.value.code == "no_active_consent"
    assert ConsentEvent.objects.count() == events


def test_withdrawal_without_consent_is_a_conflict(recording):
    with pytest.raises(Conflict):
        services.consent_withdraw(recording=recording, by=recording.performer.user)


def test_narrowing_consent_below_a_listing_unpublishes_it(listed):
    recording, listing = listed  # the listing permits model_training
    consent_for(recording, allowed_uses=["evaluation"])
    listing.refresh_from_db()
    assert listing.status == Listing.Status.UNPUBLISHED
    assert "Model training" in listing.rejection_reason
    assert not CatalogueEntry.objects.filter(listing=listing).exists()


def test_consent_that_still_covers_the_listing_keeps_it_on_sale(listed):
    recording, listing = listed
    consent_for(recording, allowed_uses=["model_training"])
    listing.refresh_from_db()
    assert listing.status == Listing.Status.PUBLISHED
    assert CatalogueEntry.objects.filter(listing=listing).count() == 1


def test_sensitive_content_not_licensable_takes_the_listing_off_sale(listed):
    recording, listing = listed
    consent_for(
        recording,
        allowed_uses=["model_training"],
        sensitive_content=["grief"],
        sensitive_content_licensable=False,
    )
    listing.refresh_from_db()
    assert listing.status == Listing.Status.UNPUBLISHED
    assert not CatalogueEntry.objects.filter(listing=listing).exists()


# --- The consent page ------------------------------------------------------------------------


def test_consent_page_shows_the_exact_text_and_its_version(client, recording):
    client.force_login(recording.performer.user)
    response = client.get(reverse("recording_consent", args=[recording.uid]))
    assert response.status_code == 200
    body = response.content.decode()
    text = services.consent_text_current()
    assert text.version in body
    assert text.sha256 in body
    # The wording itself, as stored (HTML-escaped quotes aside).
    assert "By typing my full legal name below I sign this consent." in body
    assert f'name="consent_text_version" value="{text.version}"' in body
    assert "I agree to license this sensitive content" in body


def _consent_post(recording, **overrides):
    data = {
        "allowed_uses": ["model_training", "fine_tuning"],
        "sensitive_content": ["grief"],
        "sensitive_content_licensable": "on",
        "signature_name": recording.performer.legal_name,
        "consent_text_version": services.consent_text_current().version,
    }
    data.update(overrides)
    return data


def test_consent_form_records_consent(client, recording):
    client.force_login(recording.performer.user)
    response = client.post(
        reverse("recording_consent", args=[recording.uid]),
        _consent_post(recording),
        REMOTE_ADDR="203.0.113.9",
    )
    assert response.status_code == 302
    consent = ConsentRecord.objects.get(recording=recording)
    assert consent.allowed_uses == ["model_training", "fine_tuning"]
    assert consent.sensitive_content == ["grief"]
    assert consent.sensitive_content_licensable is True
    assert consent.ip_address == "203.0.113.9"


def test_consent_form_catches_a_text_change_between_display_and_submit(client, recording):
    client.force_login(recording.performer.user)
    response = client.post(
        reverse("recording_consent", args=[recording.uid]),
        _consent_post(recording, consent_text_version="2026-01-old"),
    )
    assert response.status_code == 200
    assert not ConsentRecord.objects.exists()
    body = response.content.decode()
    assert "The consent text changed" in body
    # The page now carries the current version: signing again signs what is shown.
    assert f'value="{services.consent_text_current().version}"' in body


def test_consent_form_refuses_a_wrong_signature(client, recording):
    client.force_login(recording.performer.user)
    response = client.post(
        reverse("recording_consent", args=[recording.uid]),
        _consent_post(recording, signature_name="Not Me"),
    )
    assert response.status_code == 200
    assert "must be your full legal name" in response.content.decode()
    assert not ConsentRecord.objects.exists()


def test_one_click_withdraw_button(client, performer):
    staff = make_staff()
    recording = make_sellable_recording(performer)
    listing = make_published_listing(performer, [recording], reviewer=staff)
    client.force_login(performer.user)
    page = client.get(reverse("recording_detail", args=[recording.uid])).content.decode()
    assert reverse("recording_consent_withdraw", args=[recording.uid]) in page
    assert "data-confirm=" in page
    response = client.post(reverse("recording_consent_withdraw", args=[recording.uid]))
    assert response.status_code == 302
    listing.refresh_from_db()
    assert listing.status == Listing.Status.UNPUBLISHED
    assert not CatalogueEntry.objects.exists()
    follow = client.get(response.url).content.decode()
    assert "Consent withdrawn" in follow


def test_withdraw_needs_post(client, recording):
    consent_for(recording)
    client.force_login(recording.performer.user)
    response = client.get(reverse("recording_consent_withdraw", args=[recording.uid]))
    assert response.status_code == 405
    assert ConsentRecord.objects.get().withdrawn_at is None


# --- The API -----------------------------------------------------------------------------------


def test_api_consent_text_is_public(client):
    response = client.get("/api/v1/consent-text/")
    assert response.status_code == 200
    body = response.json()
    assert body["version"] == CURRENT_VERSION
    assert body["sha256"] == hashlib.sha256(body["body"].encode()).hexdigest()


def test_api_consent_requires_every_field(client, recording):
    client.force_login(recording.performer.user)
    response = client.post(
        f"/api/v1/recordings/{recording.uid}/consent/",
        {"allowed_uses": ["evaluation"]},
        content_type="application/json",
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error["details"]["fields"]) == {
        "sensitive_content",
        "sensitive_content_licensable",
        "signature_name",
        "consent_text_version",
    }
    assert not ConsentRecord.objects.exists()


def test_api_consent_with_outdated_version(client, recording):
    client.force_login(recording.performer.user)
    response = client.post(
        f"/api/v1/recordings/{recording.uid}/consent/",
        {
            "allowed_uses": ["evaluation"],
            "sensitive_content": [],
            "sensitive_content_licensable": False,
            "signature_name": recording.performer.legal_name,
            "consent_text_version": "old",
        },
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "consent_text_outdated"


def test_api_consent_given(client, recording):
    client.force_login(recording.performer.user)
    response = client.post(
        f"/api/v1/recordings/{recording.uid}/consent/",
        {
            "allowed_uses": ["evaluation"],
            "sensitive_content": [],
            "sensitive_content_licensable": False,
            "signature_name": recording.performer.legal_name,
            "consent_text_version": CURRENT_VERSION,
        },
        content_type="application/json",
        HTTP_USER_AGENT="pipeline/1.0",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["consent_text_version"] == CURRENT_VERSION
    assert body["allowed_uses"] == ["evaluation"]
    assert ConsentRecord.objects.get().user_agent == "pipeline/1.0"
