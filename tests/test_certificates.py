"""License certificates: signed with the platform's Ed25519 key, verifiable
offline (scripts/verify_certificate.py and manage.py verify_certificate) and
on the public verification page; any change makes them fail."""

from __future__ import annotations

import base64
import copy
import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command
from django.urls import reverse

from licensing.certificates import (
    CertificateInvalid,
    b64url,
    certificate_verify,
    public_key_document,
    public_key_raw,
)
from tests.factories_licensing import bearer, licensing_world

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def world(stripe_double):
    return licensing_world(stripe_double)


@pytest.fixture
def certificate(client, world) -> dict:
    headers, _ = bearer(created_by=world["owner"], organization=world["organization"])
    response = client.get(f"/api/v1/licenses/{world['license'].uid}/certificate/", **headers)
    assert response.status_code == 200
    return response.json()


@pytest.fixture
def keys(client) -> dict:
    response = client.get("/.well-known/residuals-license-key.json")
    assert response.status_code == 200
    return response.json()


def _tampered(certificate: dict, change: str) -> dict:
    forged = copy.deepcopy(certificate)
    facts = forged["certificate"]
    if change == "end_date":
        facts["license"]["ends_at"] = facts["license"]["ends_at"].replace(
            facts["license"]["ends_at"][:4], str(int(facts["license"]["ends_at"][:4]) + 5)
        )
    elif change == "permitted_use":
        facts["terms"]["permitted_uses"].append("synthetic_generation")
    elif change == "licensee":
        facts["licensee"]["name"] = "Someone Else Ltd"
    return forged


def test_the_certificate_states_the_license_and_verifies(certificate, keys, world):
    license = world["license"]
    facts = certificate_verify(certificate, keys)
    assert facts["type"] == "residuals.license-certificate"
    assert facts["license"]["id"] == license.uid
    assert facts["license"]["ends_at"] == license.ends_at.isoformat()
    assert facts["licensee"] == {"name": "Deep Feelings AI", "country": "US"}
    assert facts["terms"]["permitted_uses"] == license.terms["permitted_uses"]
    assert [f["sha256"] for f in facts["files"]] == [license.recordings.get().sha256]
    assert certificate["signature"]["alg"] == "EdDSA"


@pytest.mark.parametrize("change", ["end_date", "permitted_use", "licensee"])
def test_a_tampered_certificate_fails(certificate, keys, change):
    with pytest.raises(CertificateInvalid, match="altered"):
        certificate_verify(_tampered(certificate, change), keys)


def test_a_certificate_signed_by_another_key_fails(certificate):
    other = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    keys = {"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "other", "x": b64url(other)}]}
    with pytest.raises(CertificateInvalid, match="No published key"):
        certificate_verify(certificate, keys)
    keys["keys"][0]["kid"] = certificate["signature"]["kid"]
    with pytest.raises(CertificateInvalid, match="altered"):
        certificate_verify(certificate, keys)


def test_the_published_key_document(client, keys):
    response = client.get("/.well-known/residuals-license-key.json")
    assert response["Cache-Control"] == "public, max-age=3600"
    assert keys == public_key_document()
    (key,) = keys["keys"]
    raw = base64.urlsafe_b64decode(key["x"] + "=" * (-len(key["x"]) % 4))
    assert raw == public_key_raw() and len(raw) == 32
    assert (key["kty"], key["crv"], key["alg"]) == ("OKP", "Ed25519", "EdDSA")
    assert key["kid"] == hashlib.sha256(raw).hexdigest()[:16]


def _script(tmp_path, certificate, keys) -> subprocess.CompletedProcess:
    cert_path, keys_path = tmp_path / "certificate.json", tmp_path / "keys.json"
    cert_path.write_text(json.dumps(certificate, indent=2))
    keys_path.write_text(json.dumps(keys))
    return subprocess.run(
        [sys.executable, "scripts/verify_certificate.py", str(cert_path), str(keys_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_offline_script_verifies(tmp_path, certificate, keys, world):
    result = _script(tmp_path, certificate, keys)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"VALID: license {world['license'].uid} held by Deep Feelings")


@pytest.mark.parametrize("change", ["end_date", "permitted_use"])
def test_the_offline_script_rejects_a_tampered_certificate(tmp_path, certificate, keys, change):
    result = _script(tmp_path, _tampered(certificate, change), keys)
    assert result.returncode == 1
    assert result.stdout.startswith("NOT VALID")


def test_the_management_command(tmp_path, certificate, keys):
    path = tmp_path / "certificate.json"
    path.write_text(json.dumps(certificate))
    out = io.StringIO()
    call_command("verify_certificate", str(path), stdout=out)
    assert "VALID: license" in out.getvalue()

    keys_path = tmp_path / "keys.json"
    keys_path.write_text(json.dumps(keys))
    out = io.StringIO()
    call_command("verify_certificate", str(path), "--keys", str(keys_path), stdout=out)
    assert "VALID" in out.getvalue()

    path.write_text(json.dumps(_tampered(certificate, "end_date")))
    out = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("verify_certificate", str(path), stdout=out)
    assert exited.value.code == 1
    assert "NOT VALID: The signature does not match" in out.getvalue()


# --- Pages ------------------------------------------------------------------------------------


def test_the_certificate_page_is_for_the_holders_and_staff(client, world):
    url = reverse("license_certificate_page", args=[world["license"].uid])
    client.force_login(world["member"])
    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Certificate of license" in html and "Deep Feelings AI" in html
    assert world["license"].uid in html
    client.force_login(world["staff"])
    assert client.get(url).status_code == 200
    client.force_login(world["other_owner"])
    assert client.get(url).status_code == 404
    client.logout()
    assert client.get(url).status_code == 302


def test_the_certificate_json_download(client, world, keys):
    client.force_login(world["member"])
    response = client.get(
        reverse(
            "buyer_license_certificate_json",
            args=[world["organization"].slug, world["license"].uid],
        )
    )
    assert response["Content-Disposition"].startswith("attachment;")
    assert certificate_verify(response.json(), keys)["license"]["id"] == world["license"].uid


def test_anyone_can_verify_a_certificate_on_the_public_page(client, certificate):
    url = reverse("certificate_verify")
    assert client.get(url).status_code == 200
    response = client.post(url, {"certificate": json.dumps(certificate)})
    html = response.content.decode()
    assert response.status_code == 200
    assert "VALID" in html and "NOT VALID" not in html
    assert "Deep Feelings AI" in html and "Active" in html  # and its status today

    response = client.post(url, {"certificate": json.dumps(_tampered(certificate, "end_date"))})
    assert response.status_code == 422
    assert "NOT VALID" in response.content.decode()

    response = client.post(url, {"certificate": "{not json"})
    assert response.status_code == 422
    assert "This is not valid JSON" in response.content.decode()
