"""Performers are emailed when staff decide on their listings: approved,
changes requested (with the reason), taken off sale (with the reason). What
they do themselves sends nothing. The email goes out after the decision
commits, through a Celery task (once through a real worker here)."""

from __future__ import annotations

import time
from email import message_from_string
from email.header import decode_header, make_header

import pytest
from django.core import mail

from marketplace import services
from marketplace.models import Listing
from marketplace.services import ListingTerms
from tests.celery_support import running_worker
from tests.factories import make_performer
from tests.factories_marketplace import make_published_listing, make_sellable_recording
from tests.listings_support import give_mfa_session, make_staff


@pytest.fixture
def performer(db):
    return make_performer(email="di@example.com", stage_name="Di", legal_name="Diana Prince")


@pytest.fixture
def staff(db):
    return make_staff()


def submitted(performer, title="Held back"):
    recording = make_sellable_recording(performer, title=f"{title} take")
    listing = services.listing_create(
        performer=performer,
        by=performer.user,
        recording_ids=[recording.pk],
        terms=ListingTerms(title=title, price_minor=40_000, permitted_uses=["evaluation"]),
    )
    services.listing_submit(listing=listing, by=performer.user)
    return listing


@pytest.mark.django_db
def test_approval_is_emailed_with_the_catalogue_link(
    performer, staff, django_capture_on_commit_callbacks
):
    listing = submitted(performer)
    assert mail.outbox == []  # submitting tells nobody
    with django_capture_on_commit_callbacks(execute=True):
        services.listing_review(listing=listing, by=staff, approve=True)
    [email] = mail.outbox
    assert email.to == ["di@example.com"]
    assert email.subject == "“Held back” is approved and on sale"
    assert f"/catalogue/{listing.pk}/" in email.body
    assert "Hello Di," in email.body


@pytest.mark.django_db
def test_a_request_for_changes_carries_the_reason(
    performer, staff, django_capture_on_commit_callbacks
):
    listing = submitted(performer)
    with django_capture_on_commit_callbacks(execute=True):
        services.listing_review(
            listing=listing, by=staff, approve=False, reason="The title names a real hospital."
        )
    [email] = mail.outbox
    assert email.subject == "Changes requested on “Held back”"
    assert "The title names a real hospital." in email.body
    assert f"/listings/{listing.pk}/" in email.body


@pytest.mark.django_db
def test_taken_off_sale_by_staff_carries_the_reason(
    performer, staff, django_capture_on_commit_callbacks
):
    listing = make_published_listing(
        performer, [make_sellable_recording(performer)], reviewer=staff, title="Grief"
    )
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.listing_unpublish(listing=listing, by=staff, reason="No contact details.")
    [email] = mail.outbox
    assert email.subject == "“Grief” was taken off sale"
    assert "No contact details." in email.body
    assert "Licenses already sold keep their terms." in email.body


@pytest.mark.django_db
def test_what_performers_do_themselves_sends_nothing(
    performer, staff, django_capture_on_commit_callbacks
):
    listing = make_published_listing(
        performer, [make_sellable_recording(performer)], reviewer=staff, title="Grief"
    )
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.listing_unpublish(listing=listing, by=performer.user)
        services.listing_submit(listing=listing, by=performer.user)
    assert mail.outbox == []


@pytest.mark.django_db
def test_a_decision_rolled_back_sends_nothing(performer, staff, django_capture_on_commit_callbacks):
    from django.db import transaction

    listing = submitted(performer)
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        services.listing_review(listing=listing, by=staff, approve=True)
        raise RuntimeError("something later in the same transaction failed")
    assert callbacks == []
    assert mail.outbox == []
    assert Listing.objects.get(pk=listing.pk).status == Listing.Status.IN_REVIEW


@pytest.mark.django_db
def test_the_api_review_emails_too(client, performer, staff, django_capture_on_commit_callbacks):
    listing = submitted(performer)
    give_mfa_session(client, staff)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/api/v1/listings/{listing.pk}/review/",
            {"decision": "reject", "reason": "Too quiet to hear."},
            content_type="application/json",
        )
    assert response.status_code == 200
    [email] = mail.outbox
    assert "Too quiet to hear." in email.body


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_a_real_worker_sends_the_approval(tmp_path, settings):
    performer = make_performer(email="di@example.com", stage_name="Di")
    staff = make_staff()
    listing = submitted(performer)
    outbox = tmp_path / "mail"
    outbox.mkdir()
    # django-environ drops the URL's first slash: filemail:// + "/" + absolute path.
    env = {"EMAIL_URL": f"filemail:///{outbox}", "MEDIA_ROOT": str(settings.MEDIA_ROOT)}
    with running_worker(tmp_path, extra_env=env) as worker:
        services.listing_review(listing=listing, by=staff, approve=True)  # commits: autocommit
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(outbox.iterdir()):
            time.sleep(0.2)
        assert worker.wait_for_output("listing_decision_notify_task"), worker.output()
    [sent] = list(outbox.iterdir())
    message = message_from_string(sent.read_text().split("-" * 79)[0].strip())
    assert message["To"] == "di@example.com"
    subject = str(make_header(decode_header(message["Subject"])))
    assert subject == "“Held back” is approved and on sale"
    assert f"/catalogue/{listing.pk}/" in message.get_payload(decode=True).decode()
