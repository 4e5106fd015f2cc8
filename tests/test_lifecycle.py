"""The license lifecycle on a frozen clock: reminders at 30 and 7 days,
expiry (downloads stop, deletion attestation requested), attestations by
UI and API, overdue ones for staff, idempotent runs, and renewals."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.urls import reverse

from licensing.lifecycle import licenses_lifecycle_run
from licensing.models import DeletionAttestation, License, Order
from licensing.services import license_set_status
from licensing.tasks import licenses_lifecycle_task
from tests.factories_licensing import bearer, buy, licensing_world, pay
from tests.listings_support import give_mfa_session

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(stripe_double):
    return licensing_world(stripe_double)


@pytest.fixture
def license(world):
    return world["license"]


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    """Run the lifecycle (the emails go out after commit)."""

    def run_once():
        with django_capture_on_commit_callbacks(execute=True):
            return licenses_lifecycle_run()

    return run_once


def _subjects(mailoutbox) -> list[str]:
    return [m.subject for m in mailoutbox]


def test_reminders_at_30_and_7_days_are_sent_once_each(world, license, run, mailoutbox):
    mailoutbox.clear()  # the receipt
    with time_machine.travel(license.ends_at - timedelta(days=31)):
        assert run().reminded == []
    with time_machine.travel(license.ends_at - timedelta(days=30, hours=-1)):
        assert run().reminded == [(license.uid, 30)]
        assert run().reminded == []
    assert _subjects(mailoutbox) == [f"License {license.uid} ends in 29 days"]
    assert set(mailoutbox[0].to) == {
        "owner@deepfeelings.example",
        "member@deepfeelings.example",
        "billing@deepfeelingsai.example",
    }
    assert "renew the license" in mailoutbox[0].body
    with time_machine.travel(license.ends_at - timedelta(days=7, hours=-1)):
        assert run().reminded == [(license.uid, 7)]
        assert run().reminded == []
    assert _subjects(mailoutbox)[1] == f"License {license.uid} ends in 6 days"
    assert len(mailoutbox) == 2


def test_at_the_end_downloads_stop_and_deletion_is_requested(
    client, world, license, run, mailoutbox
):
    slug = world["organization"].slug
    recording = license.recordings.get()
    with time_machine.travel(license.ends_at + timedelta(minutes=5)):
        client.force_login(world["member"])  # a session from two years ago would have expired
        report = run()
        assert report.expired == [license.uid]
        assert report.summary().startswith("0 renewal(s) started")
        license.refresh_from_db()
        assert (license.status, license.status_reason) == ("expired", "The license term ended.")
        attestation = DeletionAttestation.objects.get(license=license)
        assert (attestation.status, attestation.reason) == ("requested", "expired")
        assert attestation.due_at == attestation.requested_at + timedelta(days=30)
        assert "Please confirm deletion" in mailoutbox[-1].subject

        # Downloads have stopped, in the browser and through the API.
        response = client.post(
            reverse("buyer_license_download", args=[slug, license.uid]),
            {"recording": recording.uid},
            follow=True,
        )
        assert any("expired" in str(m) for m in response.context["messages"])
        headers, _ = bearer(created_by=world["owner"], organization=world["organization"])
        response = client.post(
            f"/api/v1/licenses/{license.uid}/download-links/",
            content_type="application/json",
            **headers,
        )
        assert response.json()["error"]["code"] == "license_not_active"

        # The license page asks for the attestation; the list flags it.
        page = client.get(reverse("buyer_license_detail", args=[slug, license.uid]))
        html = page.content.decode()
        assert "please attest deletion by" in html and "Submit attestation" in html
        assert "Download all as zip" not in html
        listing_page = client.get(reverse("buyer_licenses", args=[slug])).content.decode()
        assert "Please attest deletion" in listing_page

        # Running again changes nothing more.
        mails = len(mailoutbox)
        again = run()
        assert (again.expired, again.reminded, again.started) == ([], [], [])
        assert len(mailoutbox) == mails
        assert DeletionAttestation.objects.count() == 1


def test_the_command_and_the_task_run_the_same_lifecycle(world, license, run):
    with time_machine.travel(license.ends_at + timedelta(seconds=1)):
        out = io.StringIO()
        call_command("expire_licenses", stdout=out)
        text = out.getvalue()
        assert "Licenses expired: 1" in text
        assert f"expired {license.uid}; deletion attestation requested" in text
        assert "1 license(s) expired" in text
        assert licenses_lifecycle_task.delay().get() == (
            "0 renewal(s) started, 0 reminder(s) sent, 0 license(s) expired, "
            "0 attestation(s) overdue"
        )


def _expire(license, run):
    with time_machine.travel(license.ends_at + timedelta(seconds=1)):
        run()
    license.refresh_from_db()


ATTESTATION = {
    "signer_name": "Olga Owner",
    "signer_title": "Head of Data",
    "statement": "All copies deleted from our buckets and training caches on 3 March.",
    "systems": "s3://df-raw, the training cluster scratch disks, two laptops",
}


def test_attesting_deletion_in_the_browser(client, world, license, run):
    _expire(license, run)
    slug = world["organization"].slug
    client.force_login(world["owner"])
    url = reverse("buyer_license_attest", args=[slug, license.uid])

    response = client.post(url, {**ATTESTATION, "statement": "Deleted."})
    assert response.status_code == 400
    assert "at least 20 characters" in response.content.decode()
    assert DeletionAttestation.objects.get().status == "requested"

    response = client.post(url, ATTESTATION)
    assert response.status_code == 302
    attestation = DeletionAttestation.objects.get()
    assert (attestation.status, attestation.submitted_by) == ("submitted", world["owner"])
    assert attestation.signer_title == "Head of Data"
    page = client.get(reverse("buyer_license_detail", args=[slug, license.uid])).content.decode()
    assert "Attested by" in page and "Olga Owner, Head of Data" in page

    response = client.post(url, ATTESTATION, follow=True)
    assert any("already attested" in str(m) for m in response.context["messages"])


def test_attesting_deletion_through_the_api(client, world, license, run):
    headers, api_key = bearer(created_by=world["owner"], organization=world["organization"])
    url = f"/api/v1/licenses/{license.uid}/deletion-attestation/"

    response = client.post(url, ATTESTATION, content_type="application/json", **headers)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "attestation_not_requested"

    _expire(license, run)
    response = client.post(
        url, {**ATTESTATION, "statement": "gone"}, content_type="application/json", **headers
    )
    assert response.status_code == 400
    assert response.json()["error"]["details"]["fields"] == {
        "statement": ["Say what was deleted (at least 20 characters)."]
    }
    response = client.post(url, ATTESTATION, content_type="application/json", **headers)
    assert response.status_code == 201
    body = response.json()
    assert (body["status"], body["signer_name"]) == ("submitted", "Olga Owner")
    from core.models import AuditEvent

    audit = AuditEvent.objects.get(action="attestation.submitted")
    assert audit.actor_api_key_prefix == api_key.prefix

    response = client.post(url, ATTESTATION, content_type="application/json", **headers)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "attestation_already_submitted"


def test_overdue_attestations_are_listed_for_staff(client, world, license, run):
    _expire(license, run)
    url = reverse("staff_attestations_overdue")
    with time_machine.travel(license.ends_at + timedelta(days=29)):
        give_mfa_session(client, world["staff"])
        assert license.uid not in client.get(url).content.decode()  # requested, not yet due
    with time_machine.travel(license.ends_at + timedelta(days=31)):
        assert run().attestations_overdue == 1
        give_mfa_session(client, world["staff"])
        page = client.get(url)
        assert page.status_code == 200
        html = page.content.decode()
        assert license.uid in html and "Deep Feelings AI" in html
        assert "1 day" in html
    client.force_login(world["owner"])
    assert client.get(url).status_code == 403
    client.logout()
    assert client.get(url).status_code == 302


def test_a_renewal_starts_when_the_old_term_ends(client, world, license, run, stripe_double):
    (renewal,) = buy(
        stripe_double,
        organization=world["organization"],
        buyer=world["member"],
        listings=[world["listing"]],
        renews=license,
    )
    assert renewal.status == "scheduled"
    assert renewal.renewed_from == license
    assert renewal.starts_at == license.ends_at
    assert renewal.ends_at == license.ends_at + timedelta(days=730)

    with time_machine.travel(license.ends_at + timedelta(seconds=1)):
        report = run()
        assert report.started == [renewal.uid] and report.expired == [license.uid]
    renewal.refresh_from_db()
    license.refresh_from_db()
    assert (license.status, renewal.status) == ("expired", "active")
    assert not DeletionAttestation.objects.exists()  # the files are still licensed


def test_renewing_in_the_browser(client, world, license, stripe_double):
    slug = world["organization"].slug
    client.force_login(world["member"])
    url = reverse("buyer_license_renew", args=[slug, license.uid])
    response = client.post(url)
    assert response.status_code == 302
    assert response["Location"].startswith(f"{stripe_double.url}/pay/")
    line = Order.objects.latest("id").lines.get()
    assert line.renews == license and line.price_minor == world["listing"].price_minor

    (renewal,) = pay(stripe_double, line.order)
    response = client.post(url, follow=True)
    assert any("was already renewed" in str(m) for m in response.context["messages"])
    page = client.get(reverse("buyer_license_detail", args=[slug, license.uid])).content.decode()
    assert "Renewed as" in page and renewal.uid in page


def test_a_suspended_or_unlisted_license_is_not_renewed(client, world, license, stripe_double):
    from marketplace.services import listing_unpublish

    slug = world["organization"].slug
    client.force_login(world["member"])
    url = reverse("buyer_license_renew", args=[slug, license.uid])
    listing_unpublish(listing=world["listing"], by=world["performer"].user, reason="Retired")
    response = client.post(url, follow=True)
    assert any("no longer on sale" in str(m) for m in response.context["messages"])
    license_set_status(license=license, status="suspended", reason="Dispute")
    response = client.post(url, follow=True)
    assert any("cannot be renewed" in str(m) for m in response.context["messages"])
    assert License.objects.count() == 1


# --- Reminders: only the nearest notice, none once renewed ------------------------------------


def test_a_license_first_seen_inside_the_last_week_gets_only_the_7_day_notice(
    world, license, run, mailoutbox
):
    mailoutbox.clear()
    with time_machine.travel(license.ends_at - timedelta(days=5, hours=-1)):
        assert run().reminded == [(license.uid, 7)]
        assert run().reminded == []
    assert _subjects(mailoutbox) == [f"License {license.uid} ends in 4 days"]
    license.refresh_from_db()
    assert license.reminder_30_sent_at is None and license.reminder_7_sent_at is not None


def test_a_renewed_license_gets_no_renewal_reminders(
    world, license, run, stripe_double, mailoutbox
):
    buy(
        stripe_double,
        organization=world["organization"],
        buyer=world["member"],
        listings=[world["listing"]],
        renews=license,
    )
    mailoutbox.clear()
    with time_machine.travel(license.ends_at - timedelta(days=29)):
        assert run().reminded == []
    with time_machine.travel(license.ends_at - timedelta(days=6)):
        assert run().reminded == []
    assert mailoutbox == []


def test_a_renewal_that_was_refunded_no_longer_stops_the_reminders(
    world, license, run, stripe_double
):
    (renewal,) = buy(
        stripe_double,
        organization=world["organization"],
        buyer=world["member"],
        listings=[world["listing"]],
        renews=license,
    )
    license_set_status(license=renewal, status="suspended", reason="Payment refunded.")
    with time_machine.travel(license.ends_at - timedelta(days=29)):
        assert run().reminded == [(license.uid, 30)]


# --- Refunded and disputed licenses reach their end --------------------------------------------


def _refund_at_the_dashboard(client, world, stripe_double, license):
    from tests.factories_licensing import post_event

    order = license.order_line.order
    intent = stripe_double.get(order.payment_intent_id, "payment_intent")
    charge = stripe_double.get(intent["latest_charge"], "charge")
    charge.update(amount_refunded=charge["amount"], refunded=True)
    post_event(client, stripe_double, stripe_double.refund_event(charge["id"]))
    license.refresh_from_db()


def test_a_refund_requests_deletion_at_once(client, world, license, stripe_double, mailoutbox):
    _refund_at_the_dashboard(client, world, stripe_double, license)
    assert license.status == "suspended"
    attestation = DeletionAttestation.objects.get(license=license)
    assert (attestation.status, attestation.reason) == ("requested", "refunded")
    assert (
        mailoutbox[-1].subject
        == f"Please confirm deletion of the files licensed under {license.uid}"
    )
    assert "has been refunded" in mailoutbox[-1].body

    client.force_login(world["member"])
    slug = world["organization"].slug
    html = client.get(reverse("buyer_license_detail", args=[slug, license.uid])).content.decode()
    assert "This license was refunded: please attest deletion by" in html
    assert "Submit attestation" in html
    response = client.post(reverse("buyer_license_attest", args=[slug, license.uid]), ATTESTATION)
    assert response.status_code == 302
    assert DeletionAttestation.objects.get().status == "submitted"


def test_a_refunded_license_past_its_end_expires_and_keeps_its_request(
    client, world, license, stripe_double, run
):
    from core.models import AuditEvent

    _refund_at_the_dashboard(client, world, stripe_double, license)
    requested = DeletionAttestation.objects.get(license=license)
    with time_machine.travel(license.ends_at + timedelta(minutes=1)):
        assert run().expired == [license.uid]
        assert run().expired == []
    license.refresh_from_db()
    assert license.status == "expired"
    assert license.status_reason == (
        "The license term ended while it was suspended (Payment refunded.)"
    )
    assert AuditEvent.objects.get(action="license.expired").data == {"from": "suspended"}
    attestation = DeletionAttestation.objects.get(license=license)
    assert (attestation.pk, attestation.reason, attestation.due_at) == (
        requested.pk,
        "refunded",
        requested.due_at,
    )


def test_a_disputed_license_past_its_end_expires_and_deletion_is_requested(
    client, world, license, stripe_double, run
):
    from tests.factories_licensing import post_event

    order = license.order_line.order
    intent = stripe_double.get(order.payment_intent_id, "payment_intent")
    post_event(client, stripe_double, stripe_double.open_dispute(intent["latest_charge"]))
    license.refresh_from_db()
    assert license.status == "suspended"
    assert not DeletionAttestation.objects.exists()  # the dispute may yet be won

    with time_machine.travel(license.ends_at - timedelta(days=1)):
        assert run().expired == []
    with time_machine.travel(license.ends_at + timedelta(minutes=1)):
        assert run().expired == [license.uid]
    license.refresh_from_db()
    assert license.status == "expired"
    attestation = DeletionAttestation.objects.get(license=license)
    assert (attestation.status, attestation.reason) == ("requested", "expired")


# --- Renewing after the end closes the deletion request ----------------------------------------


def test_renewing_an_expired_license_supersedes_its_deletion_request(
    client, world, license, run, stripe_double
):
    from core.models import AuditEvent

    _expire(license, run)
    assert DeletionAttestation.objects.get(license=license).status == "requested"
    with time_machine.travel(license.ends_at + timedelta(days=2)):
        (renewal,) = buy(
            stripe_double,
            organization=world["organization"],
            buyer=world["member"],
            listings=[world["listing"]],
            renews=license,
        )
        assert (renewal.status, renewal.renewed_from) == ("active", license)
        attestation = DeletionAttestation.objects.get(license=license)
        assert attestation.status == "superseded"
        audit = AuditEvent.objects.get(action="attestation.superseded")
        assert audit.data == {"renewal": renewal.uid, "reason": "expired"}

        # Not due any more: not overdue, not asked for on the pages, refused by the API.
    with time_machine.travel(license.ends_at + timedelta(days=40)):
        assert run().attestations_overdue == 0
        slug = world["organization"].slug
        client.force_login(world["owner"])
        html = client.get(
            reverse("buyer_license_detail", args=[slug, license.uid])
        ).content.decode()
        assert "please attest deletion" not in html and "Submit attestation" not in html
        assert f"{renewal.uid}</a> licenses the files again" in html
        assert (
            "Please attest deletion"
            not in client.get(reverse("buyer_licenses", args=[slug])).content.decode()
        )
        headers, _ = bearer(created_by=world["owner"], organization=world["organization"])
        response = client.post(
            f"/api/v1/licenses/{license.uid}/deletion-attestation/",
            ATTESTATION,
            content_type="application/json",
            **headers,
        )
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "attestation_superseded"
