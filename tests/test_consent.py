"""Consent: the exact text version and its hash are stored, an outdated
version or a wrong signature is refused, and withdrawal stops sales at once."""

from __future__ import annotations

import hashlib
import io

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import RequestFactory
from django.urls import reverse

from core.errors import Conflict, NotFound, ValidationError
from core.models import AuditEvent
from core.services import client_ip
from marketplace import services
from marketplace.checks import consent_current_version_check, consent_texts_unchanged_check
from marketplace.consent_texts import CURRENT_VERSION, TEXTS, text_sha256
from marketplace.models import (
    CatalogueEntry,
    ConsentEvent,
    ConsentRecord,
    ConsentText,
    Listing,
)
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


# The hash of every published consent text. A version's words never change
# (marketplace/consent_texts.py): a new wording is a new version, pinned here.
PUBLISHED_SHA256 = {
    "2026-11-v1": "e00c94e0f1b5519c4d52eb1338423ffe172cb2828f5f53784dc1b9abb861d494",
}


def test_every_published_text_still_has_its_words():
    assert {version: text_sha256(body) for version, body in TEXTS.items()} == PUBLISHED_SHA256


def run_consent_checks() -> str:
    """``manage.py check --database default`` limited to the consent checks:
    the output, or raises SystemCheckError naming what is wrong."""
    out = io.StringIO()
    call_command("check", "--database", "default", "--tag", "consent", stdout=out, stderr=out)
    return out.getvalue()


def test_the_consent_check_passes_when_stored_texts_match_the_code(recording):
    consent_for(recording)  # stores the current text and signs under it
    assert "no issues" in run_consent_checks()
    assert consent_texts_unchanged_check(databases=["default"]) == []


def test_editing_a_text_without_a_new_version_fails_the_check(recording, monkeypatch):
    consent_for(recording)
    edited = TEXTS[CURRENT_VERSION].replace("six years", "twenty years")
    assert edited != TEXTS[CURRENT_VERSION]
    monkeypatch.setitem(TEXTS, CURRENT_VERSION, edited)

    with pytest.raises(SystemCheckError) as exc:
        run_consent_checks()

    assert "residuals.consent.E001" in str(exc.value)
    assert f"consent text version {CURRENT_VERSION} changed in code" in str(exc.value)
    (error,) = consent_texts_unchanged_check(databases=["default"])
    assert error.id == "residuals.consent.E001"
    # Without a database the check has nothing to compare and stays silent,
    # so ordinary commands never touch the database for it.
    assert consent_texts_unchanged_check() == []


def test_the_same_edit_under_a_new_version_passes(recording, monkeypatch):
    consent_for(recording)
    monkeypatch.setitem(TEXTS, "2027-01-v2", TEXTS[CURRENT_VERSION] + "\nA new clause.\n")
    assert consent_texts_unchanged_check(databases=["default"]) == []


def test_a_stored_text_edited_in_the_database_fails_the_check(recording):
    consent_for(recording)
    ConsentText.objects.update(body=TEXTS[CURRENT_VERSION].replace("six", "two"))
    ids = [m.id for m in consent_texts_unchanged_check(databases=["default"])]
    assert ids == ["residuals.consent.E002"]


def test_a_signed_version_removed_from_code_fails_the_check(recording, monkeypatch):
    consent_for(recording)
    monkeypatch.delitem(TEXTS, CURRENT_VERSION)
    ids = [m.id for m in consent_texts_unchanged_check(databases=["default"])]
    assert ids == ["residuals.consent.E003"]
    (error,) = consent_current_version_check()
    assert error.id == "residuals.consent.E005"


def test_a_consent_record_with_a_foreign_hash_fails_the_check(recording):
    consent_for(recording)
    ConsentRecord.objects.update(consent_text_sha256="0" * 64)
    (error,) = consent_texts_unchanged_check(databases=["default"])
    assert error.id == "residuals.consent.E004"
    assert error.msg.startswith("1 consent record(s)")


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


# --- Where a consent came from: the client behind the proxies ---------------------------------

PROXY = "10.0.0.5"
CLIENT = "203.0.113.9"


def request_from(remote_addr: str, forwarded_for: str | None = None):
    headers = {"REMOTE_ADDR": remote_addr}
    if forwarded_for is not None:
        headers["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return RequestFactory().post("/", **headers)


@pytest.fixture
def behind_proxies(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/24", "192.0.2.1", "2001:db8:1::/48"]
    return settings


def test_without_trusted_proxies_the_forwarded_header_is_ignored(settings):
    settings.TRUSTED_PROXIES = []
    assert client_ip(request_from(PROXY, CLIENT)) == PROXY
    assert client_ip(request_from(CLIENT)) == CLIENT
    assert client_ip(None) is None


def test_a_trusted_proxy_gives_the_client_it_saw(behind_proxies):
    assert client_ip(request_from(PROXY, CLIENT)) == CLIENT
    # No header (a health check from the proxy itself): the proxy.
    assert client_ip(request_from(PROXY)) == PROXY


def test_an_untrusted_sender_cannot_spoof_its_address(behind_proxies):
    # Straight to the app server, claiming to be someone else.
    assert client_ip(request_from(CLIENT, "198.51.100.77")) == CLIENT
    # Through the proxy, with a forged entry in front: the proxy appended
    # the real address, and only that right-most untrusted entry counts.
    forged = f"198.51.100.77, {CLIENT}"
    assert client_ip(request_from(PROXY, forged)) == CLIENT
    # A forged trusted-looking entry to the left of the real client is
    # never reached either.
    assert client_ip(request_from(PROXY, f"10.0.0.9, {CLIENT}")) == CLIENT


def test_several_trusted_hops_are_walked_from_the_right(behind_proxies):
    # client → CDN edge (untrusted network, but a real hop) → load balancer
    # 192.0.2.1 → nginx 10.0.0.5 → app
    chain = f"{CLIENT}, 198.51.100.20, 192.0.2.1"
    assert client_ip(request_from(PROXY, chain)) == "198.51.100.20"
    chain = f"198.51.100.77, {CLIENT}, 192.0.2.1, 10.0.0.7"
    assert client_ip(request_from(PROXY, chain)) == CLIENT
    # Every hop trusted (an internal caller): the left-most.
    assert client_ip(request_from(PROXY, "10.0.0.8, 192.0.2.1")) == "10.0.0.8"


def test_forwarded_entries_with_ports_ipv6_and_garbage(behind_proxies):
    assert client_ip(request_from(PROXY, f"{CLIENT}:51234")) == CLIENT
    assert client_ip(request_from(PROXY, "[2001:db8:9::1]:443")) == "2001:db8:9::1"
    assert client_ip(request_from("2001:db8:1::2", "2001:db8:9::1")) == "2001:db8:9::1"
    assert client_ip(request_from("::ffff:10.0.0.5", CLIENT)) == CLIENT
    # Garbage can only come from the client side: stop at the nearest hop
    # a trusted proxy vouched for.
    assert client_ip(request_from(PROXY, "not-an-ip")) == PROXY
    assert client_ip(request_from(PROXY, "not-an-ip, 192.0.2.1")) == "192.0.2.1"
    assert client_ip(request_from(PROXY, f"not-an-ip, {CLIENT}")) == CLIENT


def test_bad_trusted_proxies_refuse_to_start():
    from django.core.exceptions import ImproperlyConfigured

    from config.settings import _trusted_proxies

    assert _trusted_proxies([" 10.0.0.1 ", "", "10.1.0.0/16", "2001:db8::/32"]) == [
        "10.0.0.1/32",
        "10.1.0.0/16",
        "2001:db8::/32",
    ]
    with pytest.raises(ImproperlyConfigured, match=r"TRUSTED_PROXIES: '10\.0\.0\.300'"):
        _trusted_proxies(["10.0.0.300"])


def test_a_consent_given_through_the_proxy_records_the_client(client, recording, behind_proxies):
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
        REMOTE_ADDR=PROXY,
        HTTP_X_FORWARDED_FOR=f"198.51.100.77, {CLIENT}",
    )
    assert response.status_code == 201, response.content
    consent = ConsentRecord.objects.get()
    assert consent.ip_address == CLIENT
    assert ConsentEvent.objects.get(consent=consent).ip_address == CLIENT
    audit = AuditEvent.objects.get(action="consent.given")
    assert audit.ip_address == CLIENT


# --- The API: POST /api/v1/recordings/<uid>/consent/withdraw/ --------------------------------


def withdraw(client, recording, body=None, **extra):
    return client.post(
        f"/api/v1/recordings/{recording.uid}/consent/withdraw/",
        body if body is not None else {},
        content_type="application/json",
        **extra,
    )


def test_api_withdrawal_stops_sales_at_once(client, listed):
    from accounts.services import api_key_create

    recording, listing = listed
    performer = recording.performer
    key = api_key_create(name="k", created_by=performer.user, performer=performer).secret

    response = withdraw(
        client,
        recording,
        {"reason": "I no longer want this out there."},
        HTTP_AUTHORIZATION=f"Bearer {key}",
        REMOTE_ADDR="198.51.100.23",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["recording"] == recording.uid
    assert body["withdrawn_at"] is not None
    assert body["withdrawal_reason"] == "I no longer want this out there."
    assert body["unpublished_listings"] == [listing.pk]
    listing.refresh_from_db()
    assert listing.status == Listing.Status.UNPUBLISHED
    assert not CatalogueEntry.objects.filter(recording=recording).exists()
    assert not services.listing_is_for_sale(listing)
    event = ConsentEvent.objects.get(kind=ConsentEvent.Kind.WITHDRAWN)
    assert event.ip_address == "198.51.100.23" and event.actor == performer.user
    audit = AuditEvent.objects.get(action="consent.withdrawn")
    assert audit.actor_api_key_prefix and audit.ip_address == "198.51.100.23"


def test_api_withdrawal_without_a_body_and_twice(client, recording):
    consent_for(recording)
    client.force_login(recording.performer.user)
    response = client.post(f"/api/v1/recordings/{recording.uid}/consent/withdraw/")
    assert response.status_code == 200
    assert response.json()["unpublished_listings"] == []
    events = ConsentEvent.objects.count()
    again = withdraw(client, recording)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "no_active_consent"
    assert ConsentEvent.objects.count() == events


@pytest.mark.parametrize(
    "body", [{"reason": 12}, {"reason": "x" * 2001}, {"why": "because"}], ids=str
)
def test_api_withdrawal_with_a_bad_body_changes_nothing(client, recording, body):
    consent_for(recording)
    client.force_login(recording.performer.user)
    response = withdraw(client, recording, body)
    assert response.status_code == 400
    assert set(response.json()["error"]["details"]["fields"]) == set(body)
    assert ConsentRecord.objects.get().withdrawn_at is None
