"""Who may open which page of a buyer organization. Outsiders get 404 so
that an organization's existence never leaks; members get 403 where only
owners may act; anonymous visitors are sent to sign in."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import ApiKey, Invitation, Membership
from accounts.services import api_key_create, invitation_create

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
