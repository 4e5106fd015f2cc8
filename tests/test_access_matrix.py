"""Who may open which page of a buyer organization. Outsiders get 404 so
that an organization's existence never leaks; members get 403 where only
owners may act; anonymous visitors are sent to sign in. And who may call the
marketplace API's performer and review endpoints (at the end)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import ApiKey, Invitation, Membership
from accounts.services import api_key_create, invitation_create
from marketplace import services
from marketplace.models import ConsentEvent
from marketplace.services import ListingTerms
from tests.factories import make_performer
from tests.factories_marketplace import make_published_listing, make_sellable_recording
from tests.listings_support import catalogue_snapshot, give_mfa_session

pytestmark = pytest.mark.django_db

ANON, OUTSIDER, MEMBER, OWNER, STAFF = "anonymous", "outsider", "member", "owner", "staff"

# (method, url name, extra url args, expected status by role)
MATRIX = [
    (
        "get",
        "organization_detail",
        [],
        {ANON: 302, OUTSIDER: 404, MEMBER: 200, OWNER: 200, STAFF: 404},
    ),
    (
        "get",
        "organization_members",
        [],
        {ANON: 302, OUTSIDER: 404, MEMBER: 200, OWNER: 200, STAFF: 404},
    ),
    (
        "post",
        "organization_members",
        [],
        {ANON: 302, OUTSIDER: 404, MEMBER: 403, OWNER: 302, STAFF: 404},
    ),
    (
        "get",
        "organization_edit",
        [],
        {ANON: 302, OUTSIDER: 404, MEMBER: 403, OWNER: 200, STAFF: 404},
    ),
    (
        "get",
        "organization_api_keys",
        [],
        {ANON: 302, OUTSIDER: 404, MEMBER: 403, OWNER: 200, STAFF: 404},
    ),
    (
        "post",
        "organization_api_keys",
        [],
        {ANON: 302, OUTSIDER: 404, MEMBER: 403, OWNER: 200, STAFF: 404},
    ),
    (
        "post",
        "organization_api_key_revoke",
        ["key"],
        {ANON: 302, OUTSIDER: 404, MEMBER: 403, OWNER: 302, STAFF: 404},
    ),
    (
        "post",
        "invitation_revoke",
        ["invitation"],
        {ANON: 302, OUTSIDER: 404, MEMBER: 403, OWNER: 302, STAFF: 404},
    ),
    (
        "post",
        "membership_role",
        ["membership"],
        {ANON: 302, OUTSIDER: 404, MEMBER: 403, OWNER: 302, STAFF: 404},
    ),
]


@pytest.fixture
def world(owner, member, outsider, staff_user, organization):
    key = api_key_create(name="pipeline", created_by=owner, organization=organization).api_key
    invitation = invitation_create(
        organization=organization, email="x@buyer.example", role="member", invited_by=owner
    ).invitation
    return {
        "users": {OUTSIDER: outsider, MEMBER: member, OWNER: owner, STAFF: staff_user},
        "organization": organization,
        "key": key,
        "invitation": invitation,
        "membership": Membership.objects.get(user=member),
    }


def _data_for(name):
    if name == "organization_members":
        return {"email": "new@buyer.example", "role": "member"}
    if name == "organization_api_keys":
        return {"name": "another"}
    if name == "membership_role":
        return {"role": "member"}
    return {}


@pytest.mark.parametrize("role", [ANON, OUTSIDER, MEMBER, OWNER, STAFF])
@pytest.mark.parametrize(
    ("method", "name", "extra", "expected"), MATRIX, ids=[f"{m} {n}" for m, n, *_ in MATRIX]
)
def test_organization_pages(client, world, role, method, name, extra, expected):
    if role != ANON:
        user = world["users"][role]
        client.force_login(user)
        if role == STAFF:
            # Staff power is in the admin, not in buyers' pages; staff here has
            # passed MFA so that only the organization rule is being tested.
            session = client.session
            session["account_authentication_methods"] = [{"method": "mfa", "at": 0}]
            session["account_authentication_methods_user"] = str(user.pk)
            session.save()
    args = [world["organization"].slug] + [world[e].pk for e in extra]
    keys_before = ApiKey.objects.filter(revoked_at__isnull=True).count()
    invitations_before = Invitation.objects.filter(revoked_at__isnull=True).count()
    response = getattr(client, method)(reverse(name, args=args), _data_for(name))
    assert response.status_code == expected[role]
    if expected[role] in {302, 403, 404} and role != OWNER:
        # Refused requests change nothing.
        assert ApiKey.objects.filter(revoked_at__isnull=True).count() == keys_before
        assert Invitation.objects.filter(revoked_at__isnull=True).count() == invitations_before


@pytest.mark.parametrize("role", [ANON, OUTSIDER, MEMBER, OWNER])
def test_organization_api_visibility(client, world, role):
    if role != ANON:
        client.force_login(world["users"][role])
    slug = world["organization"].slug
    expected = {ANON: 401, OUTSIDER: 404, MEMBER: 200, OWNER: 200}[role]
    for path in (f"/api/v1/organizations/{slug}/", f"/api/v1/organizations/{slug}/members/"):
        response = client.get(path)
        assert response.status_code == expected
        if expected != 200:
            assert set(response.json()["error"]) == {"code", "message", "details"}
    listed = client.get("/api/v1/organizations/")
    if role == ANON:
        assert listed.status_code == 401
    else:
        assert (slug in [o["slug"] for o in listed.json()["results"]]) == (role in {MEMBER, OWNER})


# --- The performer and review endpoints of the marketplace API --------------------------------
#
# Performers act on their own recordings and listings, with their session or
# their performer API key; another performer gets 404 (nothing leaks), a
# person or key that is not a performer 403. Reviewing is for staff, from a
# session that passed a second factor, never with a key.

PERFORMER_OWNER, OTHER_PERFORMER, BUYER_MEMBER = "performer owner", "other performer", "buyer"
OWNER_KEY, ORG_KEY, STAFF_NO_MFA = "owner's API key", "organization's API key", "staff, no MFA"
API_ROLES = [
    ANON,
    PERFORMER_OWNER,
    OWNER_KEY,
    OTHER_PERFORMER,
    BUYER_MEMBER,
    ORG_KEY,
    STAFF,
    STAFF_NO_MFA,
]
_PERFORMER_ONLY = {
    ANON: 401,
    PERFORMER_OWNER: 200,
    OWNER_KEY: 200,
    OTHER_PERFORMER: 404,
    BUYER_MEMBER: 403,
    ORG_KEY: 403,
    STAFF: 403,
    STAFF_NO_MFA: 403,
}
_STAFF_ONLY = {
    ANON: 401,
    PERFORMER_OWNER: 403,
    OWNER_KEY: 403,
    OTHER_PERFORMER: 403,
    BUYER_MEMBER: 403,
    ORG_KEY: 403,
    STAFF: 200,
    STAFF_NO_MFA: 403,
}
# (method, path with {placeholders} from the market fixture, body, expected by role)
API_MATRIX = [
    ("post", "/api/v1/recordings/{listed}/consent/withdraw/", {}, _PERFORMER_ONLY),
    ("post", "/api/v1/listings/{published}/unpublish/", None, _PERFORMER_ONLY),
    (
        "put",
        "/api/v1/recordings/{unlisted}/splits/",
        {
            "splits": [
                {"email": "performer@example.com", "share_bps": 6000},
                {"email": "other-performer@example.com", "share_bps": 4000},
            ]
        },
        _PERFORMER_ONLY,
    ),
    ("post", "/api/v1/listings/{in_review}/review/", {"decision": "approve"}, _STAFF_ONLY),
]
REFUSAL_CODES = {
    401: {"not_authenticated"},
    403: {"performer_required", "staff_required", "mfa_required"},
    404: {"not_found"},
}


@pytest.fixture
def market(performer, member, owner, organization, staff_user):
    listed = make_sellable_recording(performer, title="Listed take")
    published = make_published_listing(performer, [listed], reviewer=staff_user)
    unlisted = make_sellable_recording(performer, title="Unlisted take")
    for_review = make_sellable_recording(performer, title="Review take")
    in_review = services.listing_create(
        performer=performer,
        by=performer.user,
        recording_ids=[for_review.pk],
        terms=ListingTerms(title="For review", price_minor=40_000, permitted_uses=["evaluation"]),
    )
    services.listing_submit(listing=in_review, by=performer.user)
    other = make_performer(email="other-performer@example.com")
    return {
        "paths": {
            "listed": listed.uid,
            "unlisted": unlisted.uid,
            "published": published.pk,
            "in_review": in_review.pk,
        },
        "users": {
            PERFORMER_OWNER: performer.user,
            OTHER_PERFORMER: other.user,
            BUYER_MEMBER: member,
            STAFF: staff_user,
            STAFF_NO_MFA: staff_user,
        },
        "keys": {
            OWNER_KEY: api_key_create(
                name="uploader", created_by=performer.user, performer=performer
            ).secret,
            ORG_KEY: api_key_create(
                name="pipeline", created_by=owner, organization=organization
            ).secret,
        },
    }


def _market_state() -> dict:
    return {**catalogue_snapshot(), "consent_events": ConsentEvent.objects.count()}


@pytest.mark.parametrize("role", API_ROLES)
@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    API_MATRIX,
    ids=[f"{m} {p}" for m, p, *_ in API_MATRIX],
)
def test_marketplace_api_endpoints(client, market, role, method, path, body, expected):
    headers = {}
    if role in market["keys"]:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {market['keys'][role]}"
    elif role == STAFF:
        give_mfa_session(client, market["users"][role])
    elif role != ANON:
        client.force_login(market["users"][role])
    before = _market_state()

    kwargs = {"content_type": "application/json"} if body is not None else {}
    response = getattr(client, method)(
        path.format(**market["paths"]), body if body is not None else None, **kwargs, **headers
    )

    assert response.status_code == expected[role], response.content
    if expected[role] != 200:
        error = response.json()["error"]
        assert set(error) == {"code", "message", "details"}
        assert error["code"] in REFUSAL_CODES[expected[role]]
        assert _market_state() == before  # a refused request changes nothing
    else:
        assert _market_state() != before
