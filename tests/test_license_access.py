"""Who may reach a license, in the browser and through the API, and the
number of queries the license lists make (constant, whatever the count)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from licensing.models import License
from tests.factories import make_performer
from tests.factories_licensing import bearer, buy, licensing_world, make_listing
from tests.listings_support import give_mfa_session

pytestmark = pytest.mark.django_db

ANON, OUTSIDER, MEMBER, OWNER, STAFF = "anonymous", "outsider", "member", "owner", "staff"


@pytest.fixture
def world(stripe_double):
    return licensing_world(stripe_double)


def _login(client, world, role):
    if role == ANON:
        return
    user = {
        OUTSIDER: world["other_owner"],
        MEMBER: world["member"],
        OWNER: world["owner"],
        STAFF: world["staff"],
    }[role]
    if role == STAFF:
        give_mfa_session(client, user)
    else:
        client.force_login(user)


ROLES = (ANON, OUTSIDER, MEMBER, OWNER, STAFF)
# (method, url name, args from the world, expected status for each of ROLES)
WEB = [
    ("get", "buyer_licenses", "org", (302, 404, 200, 200, 404)),
    ("get", "buyer_license_detail", "lic", (302, 404, 200, 200, 404)),
    ("get", "buyer_license_manifest", "lic", (302, 404, 200, 200, 404)),
    ("get", "buyer_license_certificate_json", "lic", (302, 404, 200, 200, 404)),
    ("get", "buyer_license_zip", "lic", (302, 404, 200, 200, 404)),
    ("post", "buyer_license_download", "lic", (302, 404, 302, 302, 404)),
    ("post", "buyer_license_attest", "lic", (302, 404, 302, 302, 404)),
    ("get", "buyer_orders", "org", (302, 404, 200, 200, 404)),
    ("get", "buyer_order_detail", "order", (302, 404, 200, 200, 404)),
    ("get", "buyer_order_status", "order", (302, 404, 200, 200, 404)),
    ("get", "buyer_cart", "org", (302, 404, 200, 200, 404)),
    ("get", "license_certificate_page", "uid", (302, 404, 200, 200, 200)),
    ("get", "staff_attestations_overdue", "none", (302, 403, 403, 403, 200)),
]


def _args(world, kind):
    slug, license = world["organization"].slug, world["license"]
    return {
        "org": [slug],
        "lic": [slug, license.uid],
        "order": [slug, license.order_line.order.number],
        "uid": [license.uid],
        "none": [],
    }[kind]


@pytest.mark.parametrize("role", ROLES)
def test_web_matrix(client, world, role):
    _login(client, world, role)
    for method, name, kind, expected in WEB:
        url = reverse(name, args=_args(world, kind))
        data = {"recording": world["license"].recordings.get().uid} if method == "post" else None
        response = getattr(client, method)(url, data)
        wanted = expected[ROLES.index(role)]
        assert response.status_code == wanted, (name, role, response.status_code)
        if role == ANON:
            assert "/accounts/login/" in response["Location"]


def test_another_organizations_license_under_my_organization_slug_is_404(client, world):
    """Licenses are looked up within the organization in the address."""
    client.force_login(world["other_owner"])
    url = reverse(
        "buyer_license_detail", args=[world["other_organization"].slug, world["license"].uid]
    )
    assert client.get(url).status_code == 404


# --- The API ---------------------------------------------------------------------------------

ORG_KEY, OTHER_KEY, PERFORMER_KEY, SESSION_MEMBER, SESSION_OUTSIDER, SESSION_STAFF = (
    "org key",
    "other org key",
    "performer key",
    "member session",
    "outsider session",
    "staff session",
)


def _api_client(client, world, who) -> dict:
    if who == ANON:
        return {}
    if who == ORG_KEY:
        return bearer(created_by=world["owner"], organization=world["organization"])[0]
    if who == OTHER_KEY:
        return bearer(created_by=world["other_owner"], organization=world["other_organization"])[0]
    if who == PERFORMER_KEY:
        return bearer(created_by=world["performer"].user, performer=world["performer"])[0]
    user = {
        SESSION_MEMBER: world["member"],
        SESSION_OUTSIDER: world["other_owner"],
        SESSION_STAFF: world["staff"],
    }[who]
    client.force_login(user)
    return {}


CALLERS = (ORG_KEY, OTHER_KEY, PERFORMER_KEY, SESSION_MEMBER, SESSION_OUTSIDER, SESSION_STAFF, ANON)
# (method, path, expected status for each of CALLERS)
API = [
    ("get", "/api/v1/licenses/{uid}/", (200, 404, 403, 200, 404, 404, 401)),
    ("get", "/api/v1/licenses/{pk}/", (200, 404, 403, 200, 404, 404, 401)),
    ("get", "/api/v1/licenses/{uid}/manifest/", (200, 404, 403, 200, 404, 404, 401)),
    ("get", "/api/v1/licenses/{uid}/certificate/", (200, 404, 403, 200, 404, 404, 401)),
    ("post", "/api/v1/licenses/{uid}/download-links/", (201, 404, 403, 201, 404, 404, 401)),
    ("post", "/api/v1/licenses/{uid}/deletion-attestation/", (409, 404, 403, 409, 404, 404, 401)),
    ("get", "/api/v1/orders/{order}/", (200, 404, 403, 200, 404, 404, 401)),
    ("get", "/api/v1/licenses/", (200, 200, 403, 200, 200, 200, 401)),
    ("get", "/api/v1/orders/", (200, 200, 403, 200, 200, 200, 401)),
]


@pytest.mark.parametrize("who", CALLERS)
def test_api_matrix(client, world, who):
    headers = _api_client(client, world, who)
    license = world["license"]
    for method, template, expected in API:
        path = template.format(
            uid=license.uid, pk=license.pk, order=license.order_line.order.number
        )
        kwargs = {"content_type": "application/json"} if method == "post" else {}
        response = getattr(client, method)(path, **kwargs, **headers)
        wanted = expected[CALLERS.index(who)]
        assert response.status_code == wanted, (path, who, response.content[:200])
        if response.status_code >= 400:
            assert set(response.json()["error"]) == {"code", "message", "details"}
        if response.status_code == 403:
            assert response.json()["error"]["code"] == "organization_key_required"
        if path == "/api/v1/licenses/" and response.status_code == 200:
            ids = [row["id"] for row in response.json()["results"]]
            mine = who in (ORG_KEY, SESSION_MEMBER)
            assert ids == ([license.uid] if mine else [])


def test_the_license_as_the_api_shows_it(client, world):
    headers, _ = bearer(created_by=world["owner"], organization=world["organization"])
    license = world["license"]
    body = client.get(f"/api/v1/licenses/{license.uid}/", **headers).json()
    recording = license.recordings.get()
    assert body["id"] == license.uid
    assert body["organization"] == world["organization"].slug
    assert body["listing"] == {"id": world["listing"].pk, "title": "Grief, held back"}
    assert (body["status"], body["price_minor"], body["currency"]) == ("active", 50_000, "USD")
    assert body["days_left"] == 730
    assert body["terms"]["permitted_uses"] == ["model_training"]
    assert body["files"] == [
        {
            "recording": recording.uid,
            "title": recording.title,
            "sha256": recording.sha256,
            "size_bytes": recording.size_bytes,
            "media_type": "audio/wav",
            "path": f"files/{recording.uid}.wav",
            "available": True,
        }
    ]
    assert body["attestation"] is None and body["renewed_by"] is None
    assert body["links"]["manifest"].endswith(f"/api/v1/licenses/{license.uid}/manifest/")
    order = client.get(f"/api/v1/orders/{body['order']}/", **headers).json()
    assert order["status"] == "paid" and order["lines"][0]["license"] == license.uid


# --- Query counts ----------------------------------------------------------------------------


def _more_licenses(world, stripe_double, count: int) -> None:
    performer = make_performer(email="second@performers.example", legal_name="Sam Second")
    for n in range(count):
        listing = make_listing(performer, world["staff"], title=f"Extra {n}", price_minor=1_000)
        (license,) = buy(
            stripe_double,
            organization=world["organization"],
            buyer=world["owner"],
            listings=[listing],
        )
        license.downloads.create(recording=license.recordings.get(), user=world["owner"])


def _queries(client, url, **headers) -> int:
    client.get(url, **headers)  # warm up (an API key records when it was last used)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, **headers)
        assert response.status_code == 200
    return len(captured)


def test_the_license_lists_make_a_constant_number_of_queries(client, world, stripe_double):
    slug = world["organization"].slug
    client.force_login(world["member"])
    headers, _ = bearer(created_by=world["owner"], organization=world["organization"])
    web, api = reverse("buyer_licenses", args=[slug]), "/api/v1/licenses/"
    orders_web, orders_api = reverse("buyer_orders", args=[slug]), "/api/v1/orders/"
    before = [
        _queries(client, web),
        _queries(client, api, **headers),
        _queries(client, orders_web),
        _queries(client, orders_api, **headers),
    ]
    _more_licenses(world, stripe_double, 3)
    assert License.objects.filter(organization=world["organization"]).count() == 4
    after = [
        _queries(client, web),
        _queries(client, api, **headers),
        _queries(client, orders_web),
        _queries(client, orders_api, **headers),
    ]
    assert after == before


# --- Staff decisions in the admin ------------------------------------------------------------


def test_staff_revoke_a_license_from_the_admin_with_a_reason(client, world):
    from core.models import AuditEvent
    from licensing.models import DeletionAttestation

    license = world["license"]
    give_mfa_session(client, world["staff"])
    world["staff"].is_superuser = True
    world["staff"].save(update_fields=["is_superuser"])
    url = "/admin/licensing/license/"
    assert client.get(url).status_code == 200
    data = {"action": "license_revoke", "_selected_action": [license.pk]}
    page = client.post(url, data)
    assert page.status_code == 200 and b"Revoke these licenses?" in page.content
    assert License.objects.get().status == "active"

    response = client.post(url, {**data, "apply": "1", "reason": "Performer takedown #12"})
    assert response.status_code == 302
    license.refresh_from_db()
    assert (license.status, license.status_reason) == ("revoked", "Performer takedown #12")
    assert DeletionAttestation.objects.get(license=license).reason == "revoked"
    audit = AuditEvent.objects.get(action="license.revoked")
    assert audit.actor == world["staff"] and audit.data["reason"] == "Performer takedown #12"

    # A revoked license cannot be reactivated.
    client.post(
        url,
        {"action": "license_reactivate", "_selected_action": [license.pk], "apply": "1",
         "reason": "Changed our mind"},
    )  # fmt: skip
    license.refresh_from_db()
    assert license.status == "revoked"
    # Orders, downloads and Stripe events are read-only.
    assert (
        client.get(f"/admin/licensing/order/{license.order_line.order.pk}/change/").status_code
        == 200
    )
    assert client.get("/admin/licensing/order/add/").status_code == 403
    assert client.get("/admin/core/stripeevent/").status_code == 200
