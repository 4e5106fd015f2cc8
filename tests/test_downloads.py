"""Signed download links: they work, honour Range, expire, can't be forged,
are checked again against the license, the recording and the membership
when used, and every download is logged. The zip streams the whole license."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import time_machine
from django.core import signing
from django.core.signals import request_finished
from django.db import close_old_connections
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership
from accounts.services import api_key_revoke
from licensing.certificates import certificate_verify, public_key_document
from licensing.downloads import SALT
from licensing.models import DownloadLog
from licensing.services import license_set_status
from marketplace.services import recording_set_status
from tests.factories_licensing import bearer, licensing_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(stripe_double):
    return licensing_world(stripe_double)


@pytest.fixture
def license(world):
    return world["license"]


@pytest.fixture
def recording(license):
    return license.recordings.get()


def _original(recording) -> bytes:
    with recording.file.storage.open(recording.file.name, "rb") as handle:
        return handle.read()


def _link(client, world, recording) -> str:
    """The member presses "Download": a fresh link, as a path."""
    client.force_login(world["member"])
    response = client.post(
        reverse("buyer_license_download", args=[world["organization"].slug, world["license"].uid]),
        {"recording": recording.uid},
    )
    assert response.status_code == 302, response
    assert response["Location"].startswith("/downloads/")
    return response["Location"]


def _body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_a_link_serves_the_original_and_logs_it(client, world, recording):
    url = _link(client, world, recording)
    response = client.get(url)
    assert response.status_code == 200
    data = _body(response)
    assert data == _original(recording)
    assert response["Content-Type"] == "audio/wav"
    assert response["Content-Disposition"] == f'attachment; filename="{recording.uid}.wav"'
    assert response["Accept-Ranges"] == "bytes"
    log = DownloadLog.objects.get()
    assert (log.user, log.recording, log.kind) == (world["member"], recording, "file")
    assert (log.bytes_sent, log.completed, log.byte_range) == (len(data), True, "")
    assert log.ip_address == "127.0.0.1"


def test_a_link_works_without_a_session_like_a_presigned_url(client, world, recording):
    url = _link(client, world, recording)
    client.logout()
    assert _body(client.get(url)) == _original(recording)


def test_range_requests(client, world, recording):
    url = _link(client, world, recording)
    original = _original(recording)
    size = len(original)

    response = client.get(url, HTTP_RANGE="bytes=100-1123")
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes 100-1123/{size}"
    assert response["Content-Length"] == "1024"
    assert _body(response) == original[100:1124]

    response = client.get(url, HTTP_RANGE="bytes=-10")
    assert (response.status_code, _body(response)) == (206, original[-10:])

    response = client.get(url, HTTP_RANGE=f"bytes={size}-")
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{size}"

    ranged = DownloadLog.objects.filter(byte_range="bytes=100-1123").get()
    assert (ranged.bytes_sent, ranged.completed) == (1024, True)


def test_an_interrupted_download_logs_what_was_sent(client, rf, world, recording, monkeypatch):
    from django.contrib.auth.models import AnonymousUser

    from licensing.views import license_download

    monkeypatch.setattr("core.http.CHUNK", 4096)
    token = _link(client, world, recording).split("/")[2]
    request = rf.get(f"/downloads/{token}/")
    request.user = AnonymousUser()
    response = license_download(request, token)
    first = next(iter(response.streaming_content))
    # The client went away: the server closes the response, which closes the
    # stream. (As Django's test client does, keep the test's connection open.)
    request_finished.disconnect(close_old_connections)
    try:
        response.close()
    finally:
        request_finished.connect(close_old_connections)
    log = DownloadLog.objects.get()
    assert (log.bytes_sent, log.completed) == (len(first), False)
    assert 0 < len(first) < recording.size_bytes


def test_an_expired_link(client, world, recording):
    url = _link(client, world, recording)
    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        response = client.get(url)
        assert response.status_code == 410
        assert "This download link has expired" in response.content.decode()
        response = client.get(url, HTTP_ACCEPT="application/json")
        assert response.status_code == 410
        assert response.json()["error"]["code"] == "link_expired"
    assert not DownloadLog.objects.exists()


def test_a_tampered_link(client, world, recording):
    url = _link(client, world, recording)
    token = url.split("/")[2]
    payload = json.loads(signing.b64_decode(token.split(":")[0].encode()))
    payload["l"] = payload["l"] + 1  # someone else's license
    forged = signing.b64_encode(json.dumps(payload).encode()).decode() + token[token.index(":") :]
    for bad in (token[:-2] + "xx", forged, "nonsense"):
        response = client.get(
            reverse("license_download", args=[bad]), HTTP_ACCEPT="application/json"
        )
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "link_invalid"
    assert not DownloadLog.objects.exists()


def test_another_organizations_member_cannot_use_a_link(client, world, recording):
    url = _link(client, world, recording)
    client.force_login(world["other_owner"])
    response = client.get(url)
    assert response.status_code == 403
    assert "This link is for another organization" in response.content.decode()
    headers, _ = bearer(created_by=world["other_owner"], organization=world["other_organization"])
    client.logout()
    response = client.get(url, **headers)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "not_a_member"
    assert not DownloadLog.objects.exists()


def test_a_member_who_left_can_no_longer_use_their_link(client, world, recording):
    url = _link(client, world, recording)
    Membership.objects.filter(user=world["member"]).delete()
    client.logout()
    response = client.get(url, HTTP_ACCEPT="application/json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "not_a_member"


def _signed_now(license, recording, user) -> str:
    token = signing.dumps(
        {"l": license.pk, "r": recording.pk, "u": user.pk, "k": None}, salt=SALT, compress=True
    )
    return reverse("license_download", args=[token])


def test_an_ended_license_stops_downloads_even_with_a_fresh_link(client, world, license, recording):
    with time_machine.travel(license.ends_at + timedelta(seconds=1)):
        response = client.get(
            _signed_now(license, recording, world["member"]), HTTP_ACCEPT="application/json"
        )
        assert response.status_code == 403
        assert response.json()["error"] == {
            "code": "license_not_active",
            "message": f"License {license.uid} is expired; its files cannot be downloaded.",
            "details": {},
        }


@pytest.mark.parametrize("status", ["suspended", "revoked"])
def test_a_suspended_or_revoked_license_stops_downloads(client, world, license, recording, status):
    url = _link(client, world, recording)
    license_set_status(license=license, status=status, reason="Takedown", by=world["staff"])
    response = client.get(url)
    assert response.status_code == 403
    assert f"License {license.uid} is {status}" in response.content.decode()
    fresh = client.get(_signed_now(license, recording, world["member"]))
    assert fresh.status_code == 403


def test_a_suspended_recording_stops_downloads(client, world, recording):
    url = _link(client, world, recording)
    recording_set_status(
        recording=recording, by=world["staff"], status="suspended", reason="Takedown request"
    )
    response = client.get(url, HTTP_ACCEPT="application/json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "recording_unavailable"


def test_api_links_carry_the_key_and_stop_when_it_is_revoked(client, world, license, recording):
    headers, api_key = bearer(created_by=world["owner"], organization=world["organization"])
    response = client.post(
        f"/api/v1/licenses/{license.uid}/download-links/",
        {"recordings": [recording.uid]},
        content_type="application/json",
        **headers,
    )
    assert response.status_code == 201
    (link,) = response.json()["links"]
    assert link["recording"] == recording.uid
    path = urlsplit(link["url"]).path
    assert _body(client.get(path)) == _original(recording)
    log = DownloadLog.objects.get()
    assert log.api_key_prefix == api_key.prefix and log.user == world["owner"]

    api_key_revoke(api_key=api_key, by=world["owner"])
    response = client.get(path, HTTP_ACCEPT="application/json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "api_key_revoked"


def test_links_for_every_file_or_refused_for_files_outside_the_license(client, world, license):
    headers, _ = bearer(created_by=world["owner"], organization=world["organization"])
    url = f"/api/v1/licenses/{license.uid}/download-links/"
    response = client.post(url, content_type="application/json", **headers)
    assert response.status_code == 201 and len(response.json()["links"]) == 1
    response = client.post(
        url, {"recordings": ["REC-NOTINLICENS"]}, content_type="application/json", **headers
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_in_license"
    license_set_status(license=license, status="suspended", reason="Dispute")
    response = client.post(url, content_type="application/json", **headers)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "license_not_active"


# --- The zip ----------------------------------------------------------------------------------


def _check_zip(data: bytes, license, recording):
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    assert archive.namelist() == [
        "manifest.json",
        "certificate.json",
        f"files/{recording.uid}.wav",
    ]
    assert archive.read(f"files/{recording.uid}.wav") == _original(recording)
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["distribution"][0]["contentUrl"] == f"files/{recording.uid}.wav"
    certificate = json.loads(archive.read("certificate.json"))
    assert certificate_verify(certificate, public_key_document())["license"]["id"] == license.uid


def test_the_zip_streams_files_manifest_and_certificate(client, world, license, recording):
    client.force_login(world["member"])
    response = client.get(
        reverse("buyer_license_zip", args=[world["organization"].slug, license.uid])
    )
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == f'attachment; filename="{license.uid}.zip"'
    chunks = list(response.streaming_content)
    assert len(chunks) >= 3  # written while it is read, not built first
    _check_zip(b"".join(chunks), license, recording)
    log = DownloadLog.objects.get()
    assert (log.kind, log.bytes_sent, log.completed) == ("zip", recording.size_bytes, True)


def test_the_zip_through_the_api(client, world, license, recording):
    headers, api_key = bearer(created_by=world["owner"], organization=world["organization"])
    response = client.get(f"/api/v1/licenses/{license.uid}/archive/", **headers)
    assert response.status_code == 200
    _check_zip(b"".join(response.streaming_content), license, recording)
    assert DownloadLog.objects.get().api_key_prefix == api_key.prefix


def test_no_zip_without_an_active_license(client, world, license):
    license_set_status(license=license, status="suspended", reason="Dispute")
    client.force_login(world["member"])
    response = client.get(
        reverse("buyer_license_zip", args=[world["organization"].slug, license.uid])
    )
    assert response.status_code == 403
    headers, _ = bearer(created_by=world["owner"], organization=world["organization"])
    response = client.get(f"/api/v1/licenses/{license.uid}/archive/", **headers)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "license_not_active"
    assert not DownloadLog.objects.exists()


def test_a_suspended_recording_is_left_out_of_the_zip(client, world, license, recording):
    recording_set_status(
        recording=recording, by=world["staff"], status="suspended", reason="Takedown request"
    )
    client.force_login(world["member"])
    response = client.get(
        reverse("buyer_license_zip", args=[world["organization"].slug, license.uid])
    )
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert archive.namelist() == ["manifest.json", "certificate.json", "LEFT-OUT.txt"]
    assert recording.uid in archive.read("LEFT-OUT.txt").decode()
    assert not DownloadLog.objects.exists()


def test_only_a_streamed_body_is_logged(client, world, recording):
    """A HEAD or a 416 sends no bytes of the file, so it leaves no log row."""
    url = _link(client, world, recording)
    size = len(_original(recording))

    response = client.head(url)
    assert response.status_code == 200
    assert response["Content-Length"] == str(size)
    assert not DownloadLog.objects.exists()

    response = client.get(url, HTTP_RANGE=f"bytes={size}-")
    assert response.status_code == 416
    assert not DownloadLog.objects.exists()

    response = client.get(url, HTTP_RANGE="bytes=0-99")
    assert len(_body(response)) == 100
    log = DownloadLog.objects.get()
    assert (log.byte_range, log.bytes_sent, log.completed) == ("bytes=0-99", 100, True)
