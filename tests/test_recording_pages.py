"""A recording's pages, its derived state, the performer dashboard, and the
permission matrix over every page and API endpoint of the performer's side
of the catalogue and of staff review."""

from __future__ import annotations

from datetime import date

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Membership
from accounts.services import api_key_create
from marketplace import services
from marketplace.models import Listing, Recording, RecordingSplit
from marketplace.selectors import recording_state
from marketplace.services import ListingTerms
from tests.factories import make_organization, make_performer, make_user
from tests.factories_marketplace import (
    make_published_listing,
    make_recording,
    make_sellable_recording,
    wav_bytes,
)
from tests.listings_support import catalogue_snapshot, consent_for, give_mfa_session, make_staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def performer(db):
    return make_performer(email="eli@example.com", stage_name="Eli", legal_name="Eli Navarro")


@pytest.fixture
def staff(db):
    return make_staff()


# --- Recording state ---


def _sign(recording, **kw):
    return services.signature_save(
        recording=recording,
        by=recording.performer.user,
        primary_emotion=kw.get("emotion", "fear"),
        intensity=3,
        valence=-0.4,
        arousal=0.7,
        authenticity="forced",
    )


def _state(recording):
    # Fresh from the database: a recording caches its provenance and signature.
    return recording_state(Recording.objects.get(pk=recording.pk))


def test_recording_state_walks_through_the_workflow(performer, staff):
    recording = make_recording(performer)  # provenance without a date, no consent or signature
    assert _state(recording).code == "draft"
    _sign(recording)
    code, label, next_step = _state(recording)
    assert (code, label) == ("missing_provenance", "Missing provenance")
    assert "recording date" in next_step
    services.provenance_save(
        recording=recording,
        by=performer.user,
        performer_name="Eli Navarro",
        performer_contact="eli@example.com",
        recording_date=date(2026, 5, 1),
    )
    assert _state(recording).code == "needs_consent"
    consent_for(recording, sensitive_content=["distress"], sensitive_content_licensable=False)
    assert _state(recording).code == "sensitive_not_licensable"
    consent_for(recording, sensitive_content=["distress"], sensitive_content_licensable=True)
    assert _state(recording).code == "ready"
    other = make_performer(email="f@example.com")
    RecordingSplit.objects.filter(recording=recording).delete()  # e.g. imported without splits
    assert _state(recording).code == "splits_incomplete"
    services.splits_set(
        recording=recording, by=performer.user, shares=[(performer, 5000), (other, 5000)]
    )
    listing = services.listing_create(
        performer=performer,
        by=performer.user,
        recording_ids=[recording.pk],
        terms=ListingTerms(title="L", price_minor=1000, permitted_uses=["evaluation"]),
    )
    assert _state(recording).code == "ready"
    services.listing_submit(listing=listing, by=performer.user)
    assert _state(recording).code == "in_review"
    services.listing_review(listing=listing, by=staff, approve=True)
    assert _state(recording).label == "Listed"
    services.recording_set_status(
        recording=recording, by=staff, status="suspended", reason="Takedown request #4"
    )
    assert _state(recording).code == "suspended"
    services.recording_set_status(recording=recording, by=staff, status="active")
    assert _state(recording).code == "listed"
    services.consent_withdraw(recording=recording, by=performer.user)
    assert _state(recording).code == "consent_withdrawn"


def test_needs_signature_state(performer):
    recording = make_sellable_recording(performer)
    recording.signature.delete()
    recording = Recording.objects.get(pk=recording.pk)
    assert recording_state(recording).code == "needs_signature"


# --- Staff suspending a recording ---


def test_suspending_a_recording_takes_it_out_of_the_catalogue_and_back(performer, staff):
    from marketplace.models import CatalogueEntry

    recording = make_sellable_recording(performer)
    listing = make_published_listing(performer, [recording], reviewer=staff)
    services.recording_set_status(
        recording=recording, by=staff, status="suspended", reason="Third-party claim"
    )
    assert not CatalogueEntry.objects.exists()
    listing.refresh_from_db()
    assert listing.status == Listing.Status.PUBLISHED  # back on sale when reinstated
    services.recording_set_status(recording=recording, by=staff, status="active")
    assert CatalogueEntry.objects.filter(listing=listing).count() == 1
    services.recording_set_status(recording=recording, by=staff, status="removed", reason="Proven")
    listing.refresh_from_db()
    assert listing.status == Listing.Status.UNPUBLISHED
    assert not CatalogueEntry.objects.exists()


def test_only_staff_set_a_recording_status_and_with_a_reason(performer, staff):
    from core.errors import PermissionDenied, ValidationError

    recording = make_recording(performer)
    with pytest.raises(PermissionDenied):
        services.recording_set_status(
            recording=recording, by=performer.user, status="active", reason="x"
        )
    with pytest.raises(ValidationError) as exc:
        services.recording_set_status(recording=recording, by=staff, status="suspended")
    assert list(exc.value.details["fields"]) == ["reason"]
    with pytest.raises(ValidationError):
        services.recording_set_status(recording=recording, by=staff, status="gone", reason="x")
    recording.refresh_from_db()
    assert recording.status == "active"


# --- The recording page ---


def _with_preview(recording):
    recording.preview.save("p.wav", ContentFile(wav_bytes(0.5)), save=False)
    recording.preview_status = Recording.PreviewStatus.READY
    recording.save(update_fields=["preview", "preview_status"])
    return recording


def test_recording_page_shows_everything(client, performer, staff):
    recording = _with_preview(make_sellable_recording(performer, title="Night shift"))
    services.signature_save(
        recording=recording,
        by=performer.user,
        primary_emotion="grief",
        intensity=4,
        valence=-0.7,
        arousal=0.5,
        authenticity="suppressed",
        arc=[
            {"start": 0, "end": 1, "emotion": "anger"},
            {"start": 1, "end": 2, "emotion": "grief"},
        ],
        vocal_events=["sob"],
        action_units=[15],
    )
    listing = make_published_listing(performer, [recording], reviewer=staff, title="Night pack")
    client.force_login(performer.user)
    response = client.get(reverse("recording_detail", args=[recording.uid]))
    assert response.status_code == 200
    body = response.content.decode()
    for expected in [
        "Night shift",
        recording.uid,
        recording.sha256,
        "16,000 Hz",
        reverse("recording_owner_preview", args=[recording.uid]),
        "Listed",
        "Grief",
        "Suppressed",
        "AU15",
        "Sob",
        "Anger from 0.0 to 1.0 seconds",
        "Withdraw consent",
        "Consent history",
        "Night pack",
        "100%",
        services.consent_text_current().version,
    ]:
        assert expected in body, expected
    assert listing.title in body


def test_owner_preview_is_served_to_the_owner_only(client, performer):
    recording = _with_preview(make_recording(performer))
    client.force_login(performer.user)
    response = client.get(reverse("recording_owner_preview", args=[recording.uid]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("audio/")
    assert b"".join(response.streaming_content)[:4] == b"RIFF"
    client.force_login(make_performer(email="z@example.com").user)
    assert client.get(reverse("recording_owner_preview", args=[recording.uid])).status_code == 404


def test_preview_not_ready_is_404(client, performer):
    recording = make_recording(performer)
    client.force_login(performer.user)
    assert client.get(reverse("recording_owner_preview", args=[recording.uid])).status_code == 404


def test_provenance_form(client, performer):
    recording = make_recording(performer)
    client.force_login(performer.user)
    url = reverse("recording_provenance", args=[recording.uid])
    page = client.get(url).content.decode()
    assert performer.legal_name in page
    response = client.post(
        url,
        {
            "performer_name": "Eli Navarro",
            "performer_contact": "eli@example.com",
            "recording_date": "2999-01-01",
        },
    )
    assert response.status_code == 200
    assert "cannot be in the future" in response.content.decode()
    response = client.post(
        url,
        {
            "performer_name": "Eli Navarro",
            "performer_contact": "eli@example.com",
            "recording_date": "2026-04-02",
            "studio": "Room B",
        },
    )
    assert response.status_code == 302
    recording.provenance.refresh_from_db()
    assert recording.provenance.studio == "Room B"
    assert recording.provenance.missing_fields() == []


def test_recording_uid_routes_leave_upload_and_imports_alone():
    assert reverse("recording_detail", args=["REC-0123456789"]) == "/recordings/REC-0123456789/"
    from django.urls import resolve

    assert resolve("/recordings/upload/").url_name != "recording_detail"


# --- The performer dashboard ---


def test_dashboard_shows_states_listings_and_attention(client, performer, staff):
    ready = make_sellable_recording(performer, title="Ready one")
    draft = make_recording(performer, title="Raw take")
    listed = make_sellable_recording(performer, title="Listed one")
    make_published_listing(performer, [listed], reviewer=staff, title="On sale pack")
    rejected = services.listing_create(
        performer=performer,
        by=performer.user,
        recording_ids=[ready.pk],
        terms=ListingTerms(title="Needs work", price_minor=1000, permitted_uses=["evaluation"]),
    )
    services.listing_submit(listing=rejected, by=performer.user)
    services.listing_review(listing=rejected, by=staff, approve=False, reason="Add a description.")
    client.force_login(performer.user)
    response = client.get(reverse("performer_dashboard"))
    assert response.status_code == 200
    body = response.content.decode()
    for expected in [
        "Ready one",
        "Raw take",
        "Ready to list",
        "Draft",
        "Listed",
        "On sale pack",
        "Needs work",
        "Staff asked for changes: Add a description.",
        "Needs your attention",
        reverse("recording_detail", args=[draft.uid]),
        reverse("recording_upload"),
        reverse("recording_import_new"),
    ]:
        assert expected in body, expected
    overview = response.context["overview"]
    assert overview.recording_total == 3
    assert overview.state_counts == {"ready": 1, "draft": 1, "listed": 1}
    assert response.context["on_sale_count"] == 1
    filtered = client.get(reverse("performer_dashboard") + "?state=draft")
    assert [r.uid for r, _ in filtered.context["page"].object_list] == [draft.uid]


def test_dashboard_query_count_is_constant(client, performer, staff, django_assert_num_queries):
    first = make_sellable_recording(performer, title="Take 0")
    make_published_listing(performer, [first], reviewer=staff)
    client.force_login(performer.user)
    with CaptureQueriesContext(connection) as one:
        assert client.get(reverse("performer_dashboard")).status_code == 200
    for i in range(1, 10):
        recording = make_recording(performer, title=f"Take {i}", freq=300 + i * 10)
        if i % 2:
            consent_for(recording)
    with django_assert_num_queries(len(one)):
        response = client.get(reverse("performer_dashboard"))
    assert response.context["overview"].recording_total == 10


def test_shared_recordings_show_on_the_co_performers_dashboard(client, performer):
    co = make_performer(email="co@example.com", stage_name="Co")
    recording = make_sellable_recording(performer, title="Duet")
    services.splits_set(
        recording=recording, by=performer.user, shares=[(performer, 7000), (co, 3000)]
    )
    client.force_login(co.user)
    body = client.get(reverse("performer_dashboard")).content.decode()
    assert "Recordings you share in" in body
    assert "Duet" in body
    assert "3000 bps" in body


# --- The permission matrix ---

ANON, OTHER, OWNER, BUYER, STAFF, STAFF_MFA = (
    "anonymous",
    "other performer",
    "owner",
    "buyer member",
    "staff without MFA",
    "staff with MFA",
)
ROLES = [ANON, OTHER, OWNER, BUYER, STAFF, STAFF_MFA]


@pytest.fixture
def world(performer, staff):
    recording = _with_preview(make_sellable_recording(performer, title="Matrix take"))
    draft = services.listing_create(
        performer=performer,
        by=performer.user,
        recording_ids=[recording.pk],
        terms=ListingTerms(title="Draft", price_minor=1000, permitted_uses=["evaluation"]),
    )
    review = services.listing_create(
        performer=performer,
        by=performer.user,
        recording_ids=[recording.pk],
        terms=ListingTerms(title="Review", price_minor=1000, permitted_uses=["evaluation"]),
    )
    services.listing_submit(listing=review, by=performer.user)
    other = make_performer(email="other@example.com", legal_name="Otto Other")
    owner = make_user(email="owner@acme.example")
    organization = make_organization(owner=owner)
    buyer = make_user(email="member@acme.example")
    Membership.objects.create(organization=organization, user=buyer, role="member")
    return {
        "recording": recording,
        "draft": draft,
        "review": review,
        "users": {
            OTHER: other.user,
            OWNER: performer.user,
            BUYER: buyer,
            STAFF: staff,
            STAFF_MFA: staff,
        },
    }


def _login(client, world, role):
    if role == ANON:
        return
    user = world["users"][role]
    if role == STAFF_MFA:
        give_mfa_session(client, user)
    else:
        client.force_login(user)


PERFORMER_PAGE = {ANON: 302, OTHER: 404, BUYER: 404, STAFF: 404, STAFF_MFA: 404}
STAFF_PAGE = {ANON: 302, OTHER: 403, OWNER: 403, BUYER: 403, STAFF: 302, STAFF_MFA: None}

# (method, url name, argument kind, POST data, expected by role; OWNER missing = see below)
PAGES = [
    ("get", "recording_detail", "uid", None, {**PERFORMER_PAGE, OWNER: 200}),
    ("get", "recording_owner_preview", "uid", None, {**PERFORMER_PAGE, OWNER: 200}),
    ("get", "recording_provenance", "uid", None, {**PERFORMER_PAGE, OWNER: 200}),
    (
        "post",
        "recording_provenance",
        "uid",
        {"performer_name": "X", "performer_contact": "x@x.example", "recording_date": "2026-01-02"},
        {**PERFORMER_PAGE, OWNER: 302},
    ),
    ("get", "recording_consent", "uid", None, {**PERFORMER_PAGE, OWNER: 200}),
    ("post", "recording_consent_withdraw", "uid", {}, {**PERFORMER_PAGE, OWNER: 302}),
    ("get", "recording_signature", "uid", None, {**PERFORMER_PAGE, OWNER: 200}),
    ("get", "recording_splits", "uid", None, {**PERFORMER_PAGE, OWNER: 200}),
    ("get", "listing_list", None, None, {**PERFORMER_PAGE, OTHER: 200, OWNER: 200}),
    ("get", "listing_new", None, None, {**PERFORMER_PAGE, OTHER: 200, OWNER: 200}),
    ("get", "listing_detail", "draft", None, {**PERFORMER_PAGE, OWNER: 200}),
    ("get", "listing_edit", "draft", None, {**PERFORMER_PAGE, OWNER: 200}),
    ("post", "listing_submit", "draft", {}, {**PERFORMER_PAGE, OWNER: 302}),
    ("post", "listing_unpublish", "review", {}, {**PERFORMER_PAGE, OWNER: 302}),
    ("get", "staff_listing_review", None, None, {**STAFF_PAGE, STAFF_MFA: 200}),
    ("post", "staff_listing_approve", "review", {}, {**STAFF_PAGE, STAFF_MFA: 302}),
    ("post", "staff_listing_reject", "review", {"reason": "x"}, {**STAFF_PAGE, STAFF_MFA: 302}),
]


def _args(world, kind):
    if kind == "uid":
        return [world["recording"].uid]
    if kind in {"draft", "review"}:
        return [world[kind].pk]
    return []


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    ("method", "name", "kind", "data", "expected"), PAGES, ids=[f"{m} {n}" for m, n, *_ in PAGES]
)
def test_page_permissions(client, world, role, method, name, kind, data, expected):
    _login(client, world, role)
    before = catalogue_snapshot()
    url = reverse(name, args=_args(world, kind))
    response = client.get(url) if method == "get" else client.post(url, data or {})
    assert response.status_code == expected[role]
    if role == ANON:
        assert reverse("account_login") in response.url
    if role == STAFF and name.startswith("staff_"):
        assert reverse("mfa_activate_totp") in response.url
    if method == "post" and role not in {OWNER, STAFF_MFA}:
        assert catalogue_snapshot() == before  # refused requests change nothing


API_PERFORMER = {ANON: 401, OTHER: 404, BUYER: 403, STAFF: 403, STAFF_MFA: 403}
SIGNATURE = {
    "primary_emotion": "joy",
    "intensity": 2,
    "valence": 0.6,
    "arousal": 0.3,
    "authenticity": "genuine",
}
API = [
    ("get", "/api/v1/listings/", None, {**API_PERFORMER, OTHER: 200, OWNER: 200}),
    ("get", "/api/v1/listings/{draft}/", None, {**API_PERFORMER, OWNER: 200}),
    ("patch", "/api/v1/listings/{draft}/", {"title": "Renamed"}, {**API_PERFORMER, OWNER: 200}),
    ("post", "/api/v1/listings/{draft}/submit/", None, {**API_PERFORMER, OWNER: 200}),
    ("put", "/api/v1/recordings/{uid}/signature/", SIGNATURE, {**API_PERFORMER, OWNER: 200}),
    (
        "put",
        "/api/v1/recordings/{uid}/provenance/",
        {"performer_name": "E", "performer_contact": "e@x.example", "recording_date": None},
        {**API_PERFORMER, OWNER: 200},
    ),
    (
        "post",
        "/api/v1/recordings/{uid}/consent/",
        {
            "allowed_uses": ["evaluation"],
            "sensitive_content": [],
            "sensitive_content_licensable": False,
            "signature_name": "Eli Navarro",
            "consent_text_version": "2026-11-v1",
        },
        {**API_PERFORMER, OWNER: 201},
    ),
    ("get", "/api/v1/consent-text/", None, dict.fromkeys(ROLES, 200)),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    ("method", "path", "data", "expected"), API, ids=[f"{m} {p}" for m, p, *_ in API]
)
def test_api_permissions(client, world, role, method, path, data, expected):
    _login(client, world, role)
    before = catalogue_snapshot()
    url = path.format(uid=world["recording"].uid, draft=world["draft"].pk)
    kwargs = {"content_type": "application/json"} if data is not None else {}
    response = (
        getattr(client, method)(url, data, **kwargs)
        if data is not None
        else getattr(client, method)(url)
    )
    assert response.status_code == expected[role], response.content
    if expected[role] >= 400:
        assert set(response.json()["error"]) == {"code", "message", "details"}
        assert catalogue_snapshot() == before


def test_an_organization_key_never_acts_as_a_performer(client, performer, world):
    # The performer also owns a buyer organization; its key is the organization's.
    organization = make_organization(owner=performer.user, name="Eli Labs")
    secret = api_key_create(name="org", created_by=performer.user, organization=organization).secret
    response = client.get("/api/v1/listings/", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "performer_required"
    mine = api_key_create(name="me", created_by=performer.user, performer=performer).secret
    response = client.get("/api/v1/listings/", HTTP_AUTHORIZATION=f"Bearer {mine}")
    assert response.status_code == 200
    assert response.json()["count"] == 2
