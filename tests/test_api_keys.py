"""API keys: shown once, stored hashed, accepted as Bearer, dead once revoked."""

from __future__ import annotations

import hashlib

import pytest
from django.db import connection
from django.urls import reverse

from accounts.models import ApiKey
from accounts.services import api_key_create
from core.models import AuditEvent
from tests.factories import make_performer

pytestmark = pytest.mark.django_db


def _bearer(secret):
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def _create_in_ui(client, organization, name="training-cluster"):
    response = client.post(
        reverse("organization_api_keys", args=[organization.slug]), {"name": name}
    )
    assert response.status_code == 200
    issued = response.context["issued"]
    assert issued.secret in response.content.decode()  # shown once, on this page
    return issued


def test_created_key_works_and_only_its_hash_is_stored(client, owner, organization):
    client.force_login(owner)
    issued = _create_in_ui(client, organization)
    key = ApiKey.objects.get()
    assert key.secret_hash == hashlib.sha256(issued.secret.encode()).hexdigest()
    assert issued.secret.startswith(f"rsd_{key.prefix}_")
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_apikey")
        stored = " ".join(str(v) for row in cursor.fetchall() for v in row)
    assert issued.secret not in stored

    # The list page afterwards shows the prefix, never the secret.
    listing = client.get(reverse("organization_api_keys", args=[organization.slug]))
    assert key.prefix in listing.content.decode()
    assert issued.secret not in listing.content.decode()

    api = client.__class__()
    response = api.get("/api/v1/me/", **_bearer(issued.secret))
    assert response.status_code == 200
    body = response.json()
    assert body["organizations"] == [organization.slug]
    assert body["api_key"]["prefix"] == key.prefix
    assert body["performer"] is None
    assert body["is_staff"] is False
    key.refresh_from_db()
    assert key.last_used_at is not None
    assert AuditEvent.objects.filter(action="api_key.created", target_id=str(key.pk)).exists()


def test_revoked_key_gets_401_with_the_error_shape(client, owner, organization):
    client.force_login(owner)
    issued = _create_in_ui(client, organization)
    key = ApiKey.objects.get()
    response = client.post(reverse("organization_api_key_revoke", args=[organization.slug, key.pk]))
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None and key.revoked_by == owner

    api = client.__class__()
    response = api.get("/api/v1/me/", **_bearer(issued.secret))
    assert response.status_code == 401
    assert response.json() == {
        "error": {"code": "api_key_revoked", "message": "The API key was revoked.", "details": {}}
    }
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header",
    [
        "Bearer rsd_nosuchkey_abcdefghijklmnopqrstuvwxyz",
        "Bearer not-even-the-format",
        "Bearer",
        "Bearer two parts",
    ],
)
def test_unknown_or_malformed_keys_get_401(client, header):
    response = client.get("/api/v1/me/", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_a_tampered_secret_with_a_real_prefix_is_refused(owner, organization, client):
    issued = api_key_create(name="k", created_by=owner, organization=organization)
    tampered = issued.secret[:-4] + ("aaaa" if not issued.secret.endswith("aaaa") else "bbbb")
    response = client.get("/api/v1/me/", **_bearer(tampered))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_no_credentials_get_401_not_authenticated(client):
    response = client.get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_an_organization_key_sees_only_its_organization(client, owner, organization):
    from tests.factories import make_organization

    other = make_organization(owner=owner, name="Other Org")
    issued = api_key_create(name="k", created_by=owner, organization=organization)
    response = client.get(f"/api/v1/organizations/{other.slug}/", **_bearer(issued.secret))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    listed = client.get("/api/v1/organizations/", **_bearer(issued.secret)).json()
    assert [o["slug"] for o in listed["results"]] == [organization.slug]


def test_performer_keys(client):
    profile = make_performer(email="voice@example.com", stage_name="Vee")
    client.force_login(profile.user)
    response = client.post(reverse("performer_api_keys"), {"name": "uploader"})
    issued = response.context["issued"]
    api = client.__class__()
    body = api.get("/api/v1/me/", **_bearer(issued.secret)).json()
    assert body["performer"] == "Vee"
    assert body["organizations"] == []

    key = ApiKey.objects.get()
    client.post(reverse("performer_api_key_revoke", args=[key.pk]))
    assert api.get("/api/v1/me/", **_bearer(issued.secret)).status_code == 401


def test_a_performer_cannot_revoke_someone_elses_key(client):
    mine = make_performer(email="a@example.com")
    theirs = make_performer(email="b@example.com")
    issued = api_key_create(name="k", created_by=theirs.user, performer=theirs)
    client.force_login(mine.user)
    response = client.post(reverse("performer_api_key_revoke", args=[issued.api_key.pk]))
    assert response.status_code == 404
    issued.api_key.refresh_from_db()
    assert issued.api_key.revoked_at is None


def test_a_deactivated_creator_disables_the_key(client, owner, organization):
    issued = api_key_create(name="k", created_by=owner, organization=organization)
    owner.is_active = False
    owner.save()
    response = client.get("/api/v1/me/", **_bearer(issued.secret))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "api_key_owner_inactive"


def test_an_empty_key_name_is_refused(client, owner, organization):
    client.force_login(owner)
    response = client.post(
        reverse("organization_api_keys", args=[organization.slug]), {"name": "  "}
    )
    assert response.status_code == 200
    assert response.context["issued"] is None
    assert not ApiKey.objects.exists()
