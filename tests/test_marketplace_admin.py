"""The marketplace in the Django admin: every page loads for a superuser with
a second factor, consent is read-only, and the actions go through the
services (review, suspension) with their audit and catalogue refresh."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from core.models import AuditEvent
from marketplace import services
from marketplace.models import (
    CatalogueEntry,
    ConsentEvent,
    ConsentRecord,
    ConsentText,
    EmotionalSignature,
    Listing,
    Recording,
)
from marketplace.services import ListingTerms
from tests.factories import make_performer
from tests.factories_marketplace import make_published_listing, make_sellable_recording
from tests.listings_support import give_mfa_session, make_staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_user(db):
    return make_staff("admin@residuals.example", superuser=True)


@pytest.fixture
def world(admin_user):
    performer = make_performer(email="fay@example.com", legal_name="Fay Wong")
    recording = make_sellable_recording(performer, title="Admin take")
    listing = make_published_listing(performer, [recording], reviewer=admin_user)
    return {"performer": performer, "recording": recording, "listing": listing}


@pytest.fixture
def admin_client(client, admin_user):
    give_mfa_session(client, admin_user)
    return client


def _objects(world):
    recording = world["recording"]
    return {
        Recording: recording,
        ConsentRecord: ConsentRecord.objects.get(recording=recording),
        ConsentEvent: ConsentEvent.objects.filter(consent__recording=recording).first(),
        ConsentText: ConsentText.objects.get(),
        EmotionalSignature: EmotionalSignature.objects.get(recording=recording),
        Listing: world["listing"],
    }


MODELS = [Recording, ConsentRecord, ConsentEvent, ConsentText, EmotionalSignature, Listing]


@pytest.mark.parametrize("model", MODELS, ids=[m.__name__ for m in MODELS])
def test_changelist_and_change_page_load(admin_client, world, model):
    obj = _objects(world)[model]
    info = (model._meta.app_label, model._meta.model_name)
    change_url = reverse("admin:{}_{}_change".format(*info), args=[obj.pk])
    changelist = admin_client.get(reverse("admin:{}_{}_changelist".format(*info)))
    assert changelist.status_code == 200
    assert change_url in changelist.content.decode()
    change = admin_client.get(change_url)
    assert change.status_code == 200


@pytest.mark.parametrize(
    "query",
    ["?status__exact=active", "?media_kind__exact=audio", "?q=Admin+take", "?language__exact=en"],
)
def test_recording_filters_and_search(admin_client, world, query):
    response = admin_client.get(reverse("admin:marketplace_recording_changelist") + query)
    assert response.status_code == 200
    assert world["recording"].uid in response.content.decode()


def test_recording_search_by_sha256(admin_client, world):
    url = reverse("admin:marketplace_recording_changelist") + f"?q={world['recording'].sha256}"
    assert world["recording"].uid in admin_client.get(url).content.decode()


@pytest.mark.parametrize("model", [ConsentRecord, ConsentEvent, ConsentText, EmotionalSignature])
def test_consent_and_signatures_are_read_only(admin_client, world, model):
    obj = _objects(world)[model]
    info = (model._meta.app_label, model._meta.model_name)
    assert admin_client.get(reverse("admin:{}_{}_add".format(*info))).status_code == 403
    assert (
        admin_client.get(reverse("admin:{}_{}_delete".format(*info), args=[obj.pk])).status_code
        == 403
    )
    change = admin_client.post(reverse("admin:{}_{}_change".format(*info), args=[obj.pk]), {})
    assert change.status_code == 403
    assert model.objects.filter(pk=obj.pk).exists()


def test_admin_pages_need_mfa(client, admin_user, world):
    client.force_login(admin_user)
    response = client.get(reverse("admin:marketplace_recording_changelist"))
    assert response.status_code == 302
    assert reverse("mfa_activate_totp") in response.url


def _submitted(performer, title):
    recording = make_sellable_recording(performer, title=f"{title} take")
    listing = services.listing_create(
        performer=performer,
        by=performer.user,
        recording_ids=[recording.pk],
        terms=ListingTerms(title=title, price_minor=10_000, permitted_uses=["evaluation"]),
    )
    services.listing_submit(listing=listing, by=performer.user)
    return listing


def test_approve_action_publishes_through_the_service(admin_client, world, admin_user):
    listing = _submitted(world["performer"], "From admin")
    response = admin_client.post(
        reverse("admin:marketplace_listing_changelist"),
        {"action": "approve_selected", ACTION_CHECKBOX_NAME: [listing.pk]},
    )
    assert response.status_code == 302
    listing.refresh_from_db()
    assert listing.status == Listing.Status.PUBLISHED
    assert listing.reviewed_by == admin_user
    assert CatalogueEntry.objects.filter(listing=listing).exists()


def test_reject_action_asks_for_a_reason_first(admin_client, world):
    listing = _submitted(world["performer"], "Needs a reason")
    url = reverse("admin:marketplace_listing_changelist")
    data = {"action": "reject_selected", ACTION_CHECKBOX_NAME: [listing.pk]}
    first = admin_client.post(url, data)
    assert first.status_code == 200
    assert "Give the reason" in first.content.decode()
    listing.refresh_from_db()
    assert listing.status == Listing.Status.IN_REVIEW
    empty = admin_client.post(url, {**data, "apply": "1", "reason": ""})
    assert empty.status_code == 200
    listing.refresh_from_db()
    assert listing.status == Listing.Status.IN_REVIEW
    done = admin_client.post(url, {**data, "apply": "1", "reason": "Trim the silence."})
    assert done.status_code == 302
    listing.refresh_from_db()
    assert (listing.status, listing.rejection_reason) == ("rejected", "Trim the silence.")


def test_approving_a_published_listing_reports_the_conflict(admin_client, world):
    listing = world["listing"]
    response = admin_client.post(
        reverse("admin:marketplace_listing_changelist"),
        {"action": "approve_selected", ACTION_CHECKBOX_NAME: [listing.pk]},
        follow=True,
    )
    assert "cannot be approved" in response.content.decode()


def test_suspend_action_refreshes_the_catalogue_and_audits(admin_client, world, admin_user):
    recording, listing = world["recording"], world["listing"]
    assert CatalogueEntry.objects.filter(listing=listing).exists()
    url = reverse("admin:marketplace_recording_changelist")
    response = admin_client.post(
        url,
        {
            "action": "suspend_selected",
            ACTION_CHECKBOX_NAME: [recording.pk],
            "apply": "1",
            "reason": "Third-party claim, takedown #12",
        },
    )
    assert response.status_code == 302
    recording.refresh_from_db()
    assert recording.status == Recording.Status.SUSPENDED
    assert not CatalogueEntry.objects.filter(listing=listing).exists()
    audit = AuditEvent.objects.get(action="recording.suspended", target_id=str(recording.pk))
    assert audit.actor == admin_user
    assert audit.data["reason"] == "Third-party claim, takedown #12"
    admin_client.post(
        url,
        {
            "action": "reinstate_selected",
            ACTION_CHECKBOX_NAME: [recording.pk],
            "apply": "1",
            "reason": "Claim withdrawn",
        },
    )
    recording.refresh_from_db()
    assert recording.status == Recording.Status.ACTIVE
    assert CatalogueEntry.objects.filter(listing=listing).exists()


def test_recordings_cannot_be_added_or_deleted_in_the_admin(admin_client, world):
    assert admin_client.get(reverse("admin:marketplace_recording_add")).status_code == 403
    delete = reverse("admin:marketplace_recording_delete", args=[world["recording"].pk])
    assert admin_client.get(delete).status_code == 403
