"""Edits to a published listing after staff approved it: the listing stays on
sale (new terms for future sales only), and staff see what changed on the
review page, where they let the edits stand or take the listing off sale
with a reason the performer reads. Both decisions are audited."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.errors import PermissionDenied, ValidationError
from core.models import AuditEvent
from marketplace import selectors, services
from marketplace.models import CatalogueEntry, EmotionalSignature, Listing, Provenance
from marketplace.services import ListingTerms
from tests.factories import make_performer, make_user
from tests.factories_marketplace import make_published_listing, make_sellable_recording
from tests.listings_support import give_mfa_session, make_staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def performer(db):
    return make_performer(email="di@example.com", stage_name="Di", legal_name="Diana Prince")


@pytest.fixture
def staff(db):
    return make_staff()


def published(performer, staff, title="Grief, held back", **terms):
    recording = make_sellable_recording(performer, title=f"{title} take")
    return make_published_listing(performer, [recording], reviewer=staff, title=title, **terms)


def edit(listing, performer, **changes):
    values = {
        "title": listing.title,
        "description": listing.description,
        "price_minor": listing.price_minor,
        "permitted_uses": list(listing.permitted_uses),
        **changes,
    }
    return services.listing_update(listing=listing, by=performer.user, terms=ListingTerms(**values))


def changed_ids() -> list[int]:
    return list(selectors.listings_changed_since_review().values_list("pk", flat=True))


def test_approval_records_what_staff_saw(performer, staff):
    listing = published(performer, staff, price_minor=40_000)
    assert listing.reviewed_revision == listing.revision
    assert listing.reviewed_terms["price_minor"] == 40_000
    assert listing.reviewed_terms["title"] == "Grief, held back"
    assert changed_ids() == []


def test_an_edit_stays_on_sale_and_shows_staff_what_changed(performer, staff):
    listing = published(performer, staff, price_minor=40_000)
    edit(listing, performer, price_minor=90_000, description="Now with a longer take.")
    listing.refresh_from_db()

    assert listing.status == Listing.Status.PUBLISHED
    assert CatalogueEntry.objects.get(listing=listing).price_minor == 90_000
    assert changed_ids() == [listing.pk]
    changes = selectors.listing_changes_since_review(listing)
    changes = {change.label: (change.before, change.after) for change in changes}
    assert changes == {
        "Description": ("—", "Now with a longer take."),
        "Price": ("US$400.00", "US$900.00"),
    }


def test_editing_back_to_the_approved_terms_needs_no_second_look(performer, staff):
    listing = published(performer, staff, price_minor=40_000)
    edit(listing, performer, price_minor=45_000)
    assert changed_ids() == [listing.pk]
    edit(Listing.objects.get(pk=listing.pk), performer, price_minor=40_000)
    assert changed_ids() == []


def test_a_change_of_recordings_goes_back_to_the_queue_not_to_this_list(performer, staff):
    listing = published(performer, staff)
    other = make_sellable_recording(performer, title="Another take")
    services.listing_update(
        listing=listing,
        by=performer.user,
        terms=ListingTerms(
            title=listing.title, price_minor=listing.price_minor, permitted_uses=["model_training"]
        ),
        recording_ids=[other.pk],
    )
    listing.refresh_from_db()
    assert listing.status == Listing.Status.IN_REVIEW
    assert changed_ids() == []
    # Approved again: what staff saw now is the new version.
    services.listing_review(listing=listing, by=staff, approve=True)
    listing.refresh_from_db()
    assert listing.reviewed_revision == listing.revision
    assert changed_ids() == []


def test_letting_the_changes_stand_clears_them_and_is_audited(performer, staff):
    listing = published(performer, staff, price_minor=40_000)
    edit(listing, performer, price_minor=90_000, title="Grief, let go")
    services.listing_changes_acknowledge(listing=listing, by=staff)
    listing.refresh_from_db()

    assert changed_ids() == []
    assert listing.reviewed_terms["price_minor"] == 90_000
    event = AuditEvent.objects.get(action="listing.changes_reviewed")
    assert event.actor == staff
    assert event.data == {"revision": listing.revision, "fields": ["price_minor", "title"]}
    # A later edit shows only what changed since then.
    edit(Listing.objects.get(pk=listing.pk), performer, description="New words.")
    listing.refresh_from_db()
    labels = [c.label for c in selectors.listing_changes_since_review(listing)]
    assert labels == ["Description"]


def test_only_staff_let_changes_stand(performer, staff):
    listing = published(performer, staff)
    edit(listing, performer, price_minor=100)
    with pytest.raises(PermissionDenied):
        services.listing_changes_acknowledge(listing=listing, by=performer.user)
    assert changed_ids() == [listing.pk]
    assert not AuditEvent.objects.filter(action="listing.changes_reviewed").exists()


def test_staff_take_a_listing_off_sale_only_with_a_reason(client, performer, staff):
    listing = published(performer, staff)
    edit(listing, performer, title="Buy my other stuff at example.com")
    with pytest.raises(ValidationError) as exc:
        services.listing_unpublish(listing=listing, by=staff, reason="  ")
    assert list(exc.value.details["fields"]) == ["reason"]
    listing.refresh_from_db()
    assert listing.status == Listing.Status.PUBLISHED

    services.listing_unpublish(
        listing=listing, by=staff, reason="Titles may not advertise other sites."
    )
    listing.refresh_from_db()
    assert (listing.status, listing.rejection_reason) == (
        "unpublished",
        "Titles may not advertise other sites.",
    )
    assert not CatalogueEntry.objects.filter(listing=listing).exists()
    assert changed_ids() == []
    event = AuditEvent.objects.get(action="listing.unpublished")
    assert (event.actor, event.data["reason"]) == (staff, "Titles may not advertise other sites.")
    client.force_login(performer.user)
    page = client.get(reverse("listing_detail", args=[listing.pk])).content.decode()
    assert "Titles may not advertise other sites." in page


# --- The staff page --------------------------------------------------------------------------


def test_review_page_lists_changed_listings_with_before_and_after(client, performer, staff):
    listing = published(performer, staff, price_minor=40_000)
    untouched = published(performer, staff, title="Untouched")
    edit(listing, performer, price_minor=90_000)
    give_mfa_session(client, staff)
    page = client.get(reverse("staff_listing_review")).content.decode()
    section = page[page.index('id="changed"') :]
    assert f'id="changed-{listing.pk}"' in section
    assert f'id="changed-{untouched.pk}"' not in section
    assert "US$400.00" in section and "US$900.00" in section
    assert "1 published listing changed since approval" in page


def test_review_page_buttons(client, performer, staff):
    fine = published(performer, staff, title="Fine")
    bad = published(performer, staff, title="Bad")
    edit(fine, performer, price_minor=12_300)
    edit(bad, performer, description="Call me on +1 555 0100 for a better price.")
    give_mfa_session(client, staff)

    response = client.post(reverse("staff_listing_changes_ok", args=[fine.pk]), follow=True)
    assert "The edits to “Fine” stand." in response.content.decode()
    assert changed_ids() == [bad.pk]

    response = client.post(reverse("staff_listing_take_off_sale", args=[bad.pk]), follow=True)
    assert "Tell the performer why the listing leaves the catalogue." in response.content.decode()
    assert Listing.objects.get(pk=bad.pk).status == Listing.Status.PUBLISHED

    client.post(
        reverse("staff_listing_take_off_sale", args=[bad.pk]),
        {f"u{bad.pk}-reason": "No contact details in listings."},
    )
    bad.refresh_from_db()
    assert (bad.status, bad.rejection_reason) == ("unpublished", "No contact details in listings.")


def test_review_page_query_count_does_not_grow_with_changed_listings(
    client, performer, staff, django_assert_num_queries
):
    edit(published(performer, staff, title="One"), performer, price_minor=1_000)
    give_mfa_session(client, staff)
    with CaptureQueriesContext(connection) as one:
        client.get(reverse("staff_listing_review"))
    for i in range(3):
        edit(published(performer, staff, title=f"More {i}"), performer, price_minor=2_000 + i)
    assert len(changed_ids()) == 4
    with django_assert_num_queries(len(one)):
        assert client.get(reverse("staff_listing_review")).status_code == 200


@pytest.mark.parametrize("name", ["staff_listing_changes_ok", "staff_listing_take_off_sale"])
def test_the_staff_actions_are_for_staff_with_a_second_factor(client, performer, staff, name):
    listing = published(performer, staff)
    edit(listing, performer, price_minor=100)
    url = reverse(name, args=[listing.pk])
    body = {f"u{listing.pk}-reason": "Because."}

    response = client.post(url, body)  # anonymous
    assert response.status_code == 302 and "/accounts/login/" in response.url
    for user in (performer.user, make_user(email="buyer@acme.example")):
        client.force_login(user)
        assert client.post(url, body).status_code == 403
    client.force_login(staff)  # no second factor yet
    response = client.post(url, body)
    assert response.status_code == 302 and reverse("mfa_activate_totp") in response.url
    give_mfa_session(client, staff)
    assert client.get(url).status_code == 405  # POST only

    listing.refresh_from_db()
    assert listing.status == Listing.Status.PUBLISHED
    assert changed_ids() == [listing.pk]
    assert not AuditEvent.objects.filter(
        action__in=["listing.changes_reviewed", "listing.unpublished"]
    ).exists()


def test_a_missing_listing_is_404_for_staff(client, staff):
    give_mfa_session(client, staff)
    assert client.post(reverse("staff_listing_changes_ok", args=[999_999])).status_code == 404


# --- Edits to a listed recording's signature or provenance -----------------------------------


def describe(recording, performer, **changes):
    signature = EmotionalSignature.objects.get(recording=recording)
    values = {
        "primary_emotion": signature.primary_emotion,
        "intensity": signature.intensity,
        "valence": signature.valence,
        "arousal": signature.arousal,
        "authenticity": signature.authenticity,
        "arc": signature.arc,
        "tags": signature.tags,
        "description": signature.description,
        **changes,
    }
    services.signature_save(recording=recording, by=performer.user, **values)
    recording.refresh_from_db()


def pack(performer, staff, titles=("Take A", "Take B")):
    recordings = [make_sellable_recording(performer, title=t, seconds=6.0) for t in titles]
    listing = make_published_listing(performer, recordings, reviewer=staff, title="Pack")
    return listing, recordings


def changes_of(listing_pk: int) -> dict[str, tuple[str, str]]:
    listing = selectors.listings_changed_since_review().get(pk=listing_pk)
    return {c.label: (c.before, c.after) for c in selectors.listing_changes_since_review(listing)}


def test_approval_records_each_recordings_signature_and_provenance(performer, staff):
    listing, (a, b) = pack(performer, staff)
    assert set(listing.reviewed_recordings) == {a.uid, b.uid}
    assert listing.reviewed_recordings[a.uid]["signature.primary_emotion"] == "grief"
    assert listing.reviewed_recordings[a.uid]["provenance.recording_date"] == "2026-10-01"
    assert listing.recordings_changed is False


def test_a_signature_edit_on_a_listed_recording_is_shown_to_staff(performer, staff):
    listing, (a, _) = pack(performer, staff)
    describe(
        a,
        performer,
        primary_emotion="anger",
        intensity=5,
        arc=[{"start": 0, "end": 6, "emotion": "anger", "intensity": 5, "note": "Shouts"}],
    )
    listing.refresh_from_db()
    assert listing.status == Listing.Status.PUBLISHED
    assert listing.recordings_changed is True
    assert CatalogueEntry.objects.get(listing=listing, recording=a).primary_emotion == "anger"
    where = f"“Take A” ({a.uid})"
    assert changes_of(listing.pk) == {
        f"{where}: primary emotion": ("Grief", "Anger"),
        f"{where}: intensity": ("4/5", "5/5"),
        f"{where}: arc": ("—", "0–6 s anger 5/5 (Shouts)"),
    }


def test_a_provenance_edit_is_shown_and_editing_back_clears_it(performer, staff):
    listing, (a, _) = pack(performer, staff)
    provenance = Provenance.objects.get(recording=a)

    def save(studio):
        services.provenance_save(
            recording=a,
            by=performer.user,
            performer_name=provenance.performer_name,
            performer_contact=provenance.performer_contact,
            recording_date=provenance.recording_date,
            session_name=provenance.session_name,
            studio=studio,
        )

    save("Studio 9, Lagos")
    assert changes_of(listing.pk) == {
        f"“Take A” ({a.uid}): studio (provenance)": ("—", "Studio 9, Lagos")
    }
    save("")
    assert changed_ids() == []


def test_another_recordings_unchanged_save_keeps_the_flag(performer, staff):
    listing, (a, b) = pack(performer, staff)
    describe(a, performer, intensity=1)
    describe(b, performer)  # saved again, nothing different
    assert changed_ids() == [listing.pk]
    describe(a, performer, intensity=4)  # back to what staff approved
    assert changed_ids() == []


def test_letting_recording_edits_stand_takes_them_as_reviewed(performer, staff):
    listing, (a, _) = pack(performer, staff)
    describe(a, performer, authenticity="forced")
    services.listing_changes_acknowledge(listing=listing, by=staff)
    listing.refresh_from_db()
    assert (listing.recordings_changed, changed_ids()) == (False, [])
    assert listing.reviewed_recordings[a.uid]["signature.authenticity"] == "forced"
    event = AuditEvent.objects.get(action="listing.changes_reviewed")
    assert event.data["fields"] == [a.uid]


def test_edits_to_a_recording_in_a_draft_listing_flag_nothing(performer, staff):
    recording = make_sellable_recording(performer, title="Draft take")
    listing = services.listing_create(
        performer=performer,
        by=performer.user,
        recording_ids=[recording.pk],
        terms=ListingTerms(title="Draft", price_minor=40_000, permitted_uses=["evaluation"]),
    )
    describe(recording, performer, intensity=1)
    listing.refresh_from_db()
    assert (listing.reviewed_recordings, listing.recordings_changed) == (None, False)


def test_review_page_shows_recording_edits(client, performer, staff):
    listing, (a, _) = pack(performer, staff)
    describe(a, performer, primary_emotion="joy")
    give_mfa_session(client, staff)
    page = client.get(reverse("staff_listing_review")).content.decode()
    section = page[page.index(f'id="changed-{listing.pk}"') :]
    assert f"“Take A” ({a.uid}): primary emotion" in section
    assert "Grief" in section and "Joy" in section


def test_a_listing_approved_before_snapshots_existed_is_not_flagged(performer, staff):
    listing, (a, _) = pack(performer, staff)
    # As published before migration 0007 and never snapshotted (SQL NULL).
    Listing.objects.filter(pk=listing.pk).update(reviewed_recordings=None)
    describe(a, performer, intensity=1)
    listing.refresh_from_db()
    assert (listing.reviewed_recordings, listing.recordings_changed) == (None, False)
    assert changed_ids() == []


def test_letting_changes_stand_twice_records_one_decision(performer, staff):
    listing = published(performer, staff)
    edit(listing, performer, price_minor=70_000)
    services.listing_changes_acknowledge(listing=listing, by=staff)
    services.listing_changes_acknowledge(listing=listing, by=staff)
    assert AuditEvent.objects.filter(action="listing.changes_reviewed").count() == 1
