"""Media on an S3-compatible store: the same upload, preview and licensed
download paths as local disk, against moto's S3 server on loopback (a real
HTTP S3 API, reached by django-storages through boto3)."""

from __future__ import annotations

import socket
import subprocess
import sys

import boto3
import pytest
from django.urls import reverse

from marketplace.services.recordings import recording_preview_build
from tests.factories_licensing import licensing_world

pytestmark = pytest.mark.django_db

BUCKET = "residuals-media"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_media(settings, s3_endpoint, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": s3_endpoint,
                "region_name": "us-east-1",
                "default_acl": None,
                "file_overwrite": False,
            },
        },
    }
    yield client
    for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


def _keys(client) -> set[str]:
    return {item["Key"] for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])}


def test_originals_and_previews_live_in_the_bucket_and_download_from_it(
    client, s3_media, stripe_double, tmp_path
):
    world = licensing_world(stripe_double)
    # The preview is built after commit by a worker; here, by the same service.
    recording = recording_preview_build(world["license"].recordings.get())
    assert recording.preview_status == "ready"
    keys = _keys(s3_media)
    assert recording.file.name in keys
    assert recording.preview.name in keys
    # Nothing was written to the local media folder.
    assert not any(p.is_file() for p in (tmp_path / "media").rglob("*"))

    stored = s3_media.get_object(Bucket=BUCKET, Key=recording.file.name)["Body"].read()
    client.force_login(world["member"])
    response = client.post(
        reverse("buyer_license_download", args=[world["organization"].slug, world["license"].uid]),
        {"recording": recording.uid},
    )
    assert response.status_code == 302
    download = client.get(response["Location"], HTTP_RANGE="bytes=0-99")
    assert download.status_code == 206
    assert b"".join(download.streaming_content) == stored[:100]
    whole = client.get(response["Location"])
    assert b"".join(whole.streaming_content) == stored


def test_media_storage_s3_is_chosen_by_configuration(tmp_path):
    code = (
        "from django.core.files.storage import default_storage as s;"
        "print(type(s._wrapped if hasattr(s, '_wrapped') else s).__name__, end=' ');"
        "s._setup() if hasattr(s, '_setup') else None;"
        "print(type(s._wrapped).__name__, s.bucket_name, s.endpoint_url)"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        capture_output=True,
        text=True,
        env={
            "PATH": "/usr/bin:/bin",
            "RESIDUALS_ENV": "development",
            "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
            "MEDIA_STORAGE": "s3",
            "S3_BUCKET": "media-bucket",
            "S3_ENDPOINT_URL": "http://127.0.0.1:9000",
        },
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "S3Storage media-bucket http://127.0.0.1:9000" in result.stdout
