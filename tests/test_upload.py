"""Uploading one recording: the streaming upload handler, the service, the
API (`/api/v1/recordings/`) and the web page (`/recordings/upload/`), each
with real generated media, each role, and each way a file can be wrong."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import StopUpload
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import resolve, reverse

from accounts.services import api_key_create
from core.errors import Conflict, PermissionDenied, ValidationError
from core.models import AuditEvent
from marketplace import media
from marketplace.models import Provenance, Recording, RecordingSplit
from marketplace.services.recordings import _store, recording_create
from marketplace.uploads import HashingUploadHandler, upload_refusal
from tests.factories import PASSWORD, make_performer, make_user
from tests.factories_marketplace import make_recording, wav_bytes
from tests.test_media import flac_bytes, mp3_bytes, ogg_vorbis_bytes, video_bytes

pytestmark = pytest.mark.django_db

API = "/api/v1/recordings/"
PAGE = "/recordings/upload/"


def stored_files() -> list[Path]:
    root = Path(django_settings.MEDIA_ROOT)
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def media_file(data: bytes, name: str = "take.wav", content_type: str = "audio/wav"):
    return SimpleUploadedFile(name, data, content_type=content_type)


def bearer(secret: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


@pytest.fixture
def performer_key(performer):
    return api_key_create(name="uploader", created_by=performer.user, performer=performer).secret


@pytest.fixture
def other_performer(db):
    return make_performer(email="other@example.com")


@pytest.fixture
def organization_key(owner, organization):
    return api_key_create(name="pipeline", created_by=owner, organization=organization).secret


def api_upload(client, secret, data: bytes, *, name="take.wav", **fields):
    payload = {"file": media_file(data, name), "title": fields.pop("title", "Take one"), **fields}
    return client.post(API, payload, **bearer(secret))


# --- The upload handler ------------------------------------------------------------------


def _handler_for(path: str, content_length: int | None = None) -> HashingUploadHandler:
    request = RequestFactory().post(path)
    request.resolver_match = resolve(path)
    handler = HashingUploadHandler(request)
    handler.handle_raw_input(None, request.META, content_length, b"boundary")
    return handler


def test_the_handler_streams_to_disk_and_hashes_as_data_arrives():
    data = wav_bytes(0.5)
    handler = _handler_for(API, content_length=len(data) + 500)
    handler.new_file("file", "take.wav", "audio/wav", None)
    for start in range(0, len(data), 1000):
        handler.receive_data_chunk(data[start : start + 1000], start)
    uploaded = handler.file_complete(len(data))
    assert uploaded.sha256 == hashlib.sha256(data).hexdigest()
    assert uploaded.size == len(data)
    assert Path(uploaded.temporary_file_path()).read_bytes() == data
    uploaded.close()


def test_the_handler_stops_at_the_limit_counting_bytes(settings):
    settings.RECORDING_MAX_UPLOAD_BYTES = 2500
    handler = _handler_for(API, content_length=None)  # no length to go by
    handler.new_file("file", "take.wav", "audio/wav", None)
    handler.receive_data_chunk(b"x" * 2000, 0)
    temporary = handler.file.temporary_file_path()
    with pytest.raises(StopUpload) as caught:
        handler.receive_data_chunk(b"x" * 1000, 2000)
    assert caught.value.connection_reset
    error = upload_refusal(handler.request)
    assert error.code == "file_too_large"
    assert error.status_code == 413
    assert error.details["max_bytes"] == 2500
    handler.file.close()  # what Django's parser does after StopUpload
    assert not Path(temporary).exists()


def test_the_handler_refuses_early_from_content_length_on_single_upload_views(settings):
    settings.RECORDING_MAX_UPLOAD_BYTES = 1000
    handler = _handler_for(PAGE, content_length=5_000_000)
    with pytest.raises(StopUpload):
        handler.new_file("file", "take.wav", "audio/wav", None)
    assert upload_refusal(handler.request).code == "file_too_large"


def test_other_views_get_only_the_per_file_limit(settings):
    """A request carrying several files (a batch) may be larger than one file's limit."""
    settings.RECORDING_MAX_UPLOAD_BYTES = 1000
    handler = _handler_for("/recordings/imports/new/", content_length=5_000_000)
    handler.new_file("file", "take.wav", "audio/wav", None)
    handler.receive_data_chunk(b"x" * 900, 0)
    assert upload_refusal(handler.request) is None
    handler.file.close()


# --- The service -------------------------------------------------------------------------


def test_recording_create_reads_the_file_and_records_everything(performer):
    data = flac_bytes(seconds=1.0, rate=48_000, channels=2)
    recording = recording_create(
        performer=performer,
        by=performer.user,
        file=ContentFile(data, name="take.flac"),
        original_filename="../../etc/Take one.flac",
        title="  Take   one ",
        language="es-mx",
        provenance={"recording_date": "2026-10-01", "session_name": "Gig 4", "studio": "Room B"},
    )
    recording.refresh_from_db()
    assert recording.uid.startswith("REC-")
    assert recording.title == "Take one"
    assert recording.language == "es-MX"
    assert recording.original_filename == "Take one.flac"
    assert (recording.container, recording.media_kind, recording.mime_type) == (
        "flac",
        "audio",
        "audio/flac",
    )
    assert recording.sha256 == hashlib.sha256(data).hexdigest()
    assert recording.size_bytes == len(data)
    assert recording.duration_seconds == pytest.approx(1.0, abs=0.01)
    assert (recording.sample_rate, recording.channels) == (48_000, 2)
    assert recording.preview_status == Recording.PreviewStatus.PENDING
    # Stored through the storage API under a name from the detected type.
    assert recording.file.name == f"recordings/{performer.pk}/{recording.uid}/original.flac"
    assert recording.file.read() == data
    provenance = Provenance.objects.get(recording=recording)
    assert (provenance.performer_name, provenance.performer_contact) == (
        performer.legal_name,
        performer.contact_email,
    )
    assert str(provenance.recording_date) == "2026-10-01"
    assert (provenance.session_name, provenance.studio) == ("Gig 4", "Room B")
    split = RecordingSplit.objects.get(recording=recording)
    assert (split.performer, split.share_bps) == (performer, 10_000)
    event = AuditEvent.objects.get(action="recording.uploaded")
    assert event.actor == performer.user
    assert event.target_id == str(recording.pk)
    assert event.data["sha256"] == recording.sha256


def test_recording_create_uses_the_path_of_a_local_file(performer, tmp_path):
    path = tmp_path / "session" / "take 7.mp3"
    path.parent.mkdir()
    path.write_bytes(mp3_bytes())
    from django.core.files import File

    with path.open("rb") as handle:
        recording = recording_create(
            performer=performer,
            by=performer.user,
            file=File(handle, name=str(path)),
            original_filename=path.name,
            title="Take 7",
        )
    assert recording.container == "mp3"
    assert recording.original_filename == "take 7.mp3"


def test_make_recording_goes_through_the_service(performer):
    recording = make_recording(performer, title="Take 1", seconds=2.0)
    assert recording.duration_seconds == 2.0
    assert recording.provenance.performer_name == performer.legal_name
    assert recording.splits.get().share_bps == 10_000
    assert make_recording(performer, title="Take 2").sha256 != recording.sha256


def test_only_the_performer_may_upload_to_their_profile(performer, other_performer):
    with pytest.raises(PermissionDenied):
        recording_create(
            performer=performer,
            by=other_performer.user,
            file=ContentFile(wav_bytes(0.5), name="take.wav"),
            original_filename="take.wav",
            title="Not mine",
        )
    assert not Recording.objects.exists()
    assert stored_files() == []


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("title", {"title": "   "}),
        ("language", {"language": "english please"}),
        ("recording_date", {"provenance": {"recording_date": "2999-01-01"}}),
        ("recording_date", {"provenance": {"recording_date": "yesterday"}}),
        ("studio", {"provenance": {"studio": "x" * 201}}),
    ],
)
def test_bad_fields_are_named_and_nothing_is_saved(performer, field, kwargs):
    values = {"title": "Take", **kwargs}
    with pytest.raises(ValidationError) as caught:
        recording_create(
            performer=performer,
            by=performer.user,
            file=ContentFile(wav_bytes(0.5), name="take.wav"),
            original_filename="take.wav",
            **values,
        )
    assert field in caught.value.details["fields"]
    assert not Recording.objects.exists()
    assert stored_files() == []


def test_the_unique_constraint_race_is_a_duplicate_and_leaves_no_file(performer):
    """Two uploads of the same file at once: both pass the duplicate check,
    the database's constraint stops the second, whose stored file is removed."""
    data = wav_bytes(0.5)
    first = recording_create(
        performer=performer,
        by=performer.user,
        file=ContentFile(data, name="take.wav"),
        original_filename="take.wav",
        title="First",
    )
    path = Path(django_settings.MEDIA_ROOT) / "race.wav"
    path.write_bytes(data)
    before = set(stored_files())
    facts = media.probe(path, media.WAV)
    with pytest.raises(Conflict) as caught:
        _store(
            performer=performer,
            by=performer.user,
            file=ContentFile(data),
            path=str(path),
            size=len(data),
            sha256=first.sha256,
            facts=facts,
            original_filename="take.wav",
            title="Second",
            language="",
            provenance={"recording_date": None, "session_name": "", "studio": "", "annotator": ""},
            request=None,
        )
    assert caught.value.code == "duplicate_recording"
    assert caught.value.details["recording"] == first.uid
    assert Recording.objects.count() == 1
    assert set(stored_files()) == before


# --- API: who may call ----------------------------------------------------------------------


def test_anonymous_callers_are_refused(client, performer):
    recording = make_recording(performer)
    assert client.post(API, {"file": media_file(wav_bytes(0.2)), "title": "x"}).status_code == 401
    assert client.get(API).status_code == 401
    response = client.get(f"{API}{recording.uid}/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_organization_keys_are_refused(client, performer, organization_key):
    recording = make_recording(performer)
    response = api_upload(client, organization_key, wav_bytes(0.5))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "performer_key_required"
    for url in (API, f"{API}{recording.uid}/"):
        response = client.get(url, **bearer(organization_key))
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "performer_key_required"
    assert Recording.objects.count() == 1


def test_a_performer_key_uploads_a_recording(client, performer, performer_key):
    data = wav_bytes(1.25, rate=22_050, channels=2)
    response = api_upload(
        client,
        performer_key,
        data,
        # The client's name and content type are not trusted either way.
        name="take.mp3",
        title="Voicemail to my sister",
        language="en",
        recording_date="2026-09-30",
        session_name="Grief session",
        studio="Room 2",
        annotator="Dana",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    recording = Recording.objects.get()
    assert body["uid"] == recording.uid
    assert response["Location"] == body["links"]["self"]
    assert body["links"]["self"].endswith(f"/api/v1/recordings/{recording.uid}/")
    assert body["links"]["page"].endswith(f"/recordings/{recording.uid}/")
    assert body["container"] == "wav"
    assert body["mime_type"] == "audio/wav"
    assert body["duration_seconds"] == pytest.approx(1.25)
    assert (body["sample_rate"], body["channels"]) == (22_050, 2)
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    with recording.file.open("rb") as stored:
        assert stored.read() == data
    assert [p.name for p in stored_files()] == ["original.wav"]
    assert body["status"] == "active"
    assert body["preview_status"] == "pending"
    assert body["provenance"] == {
        "performer_name": performer.legal_name,
        "performer_contact": performer.contact_email,
        "recording_date": "2026-09-30",
        "session_name": "Grief session",
        "studio": "Room 2",
        "annotator": "Dana",
    }
    event = AuditEvent.objects.get(action="recording.uploaded")
    assert event.actor_api_key_prefix == performer_key.split("_")[1]


def test_a_signed_in_performer_uploads_through_the_session(client, performer):
    client.force_login(performer.user)
    response = client.post(API, {"file": media_file(ogg_vorbis_bytes()), "title": "Laugh"})
    assert response.status_code == 201
    assert response.json()["container"] == "ogg"


def test_a_signed_in_person_without_a_performer_profile_is_refused(client, outsider):
    client.force_login(outsider)
    response = client.post(API, {"file": media_file(wav_bytes(0.2)), "title": "x"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "performer_profile_required"


@pytest.mark.parametrize(
    ("fmt", "name", "kind"),
    [("mp4", "clip.mp4", "video"), ("webm", "clip.webm", "video")],
)
def test_video_uploads_report_picture_facts(client, performer_key, fmt, name, kind):
    response = api_upload(client, performer_key, video_bytes(fmt, width=192, height=108), name=name)
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["media_kind"], body["container"]) == (kind, fmt)
    assert (body["width"], body["height"], body["frame_rate"]) == (192, 108, 10.0)


# --- API: bad files --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"Just some words, not a recording.\n" * 50, 415, "unsupported_media_type"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 500, 415, "unsupported_media_type"),
        (b"%PDF-1.4\n" + b"\x00" * 500, 415, "unsupported_media_type"),
        (b"PK\x03\x04" + b"\x00" * 500, 415, "unsupported_media_type"),
        (video_bytes("matroska"), 415, "unsupported_media_type"),
        (wav_bytes(1.0)[:16_000], 400, "corrupt_media"),
        (b"", 400, "empty_file"),
    ],
    ids=["text", "png", "pdf", "zip", "matroska", "truncated-wav", "empty"],
)
def test_bad_files_are_refused_naming_the_file_and_nothing_is_saved(
    client, performer_key, data, status, code
):
    response = api_upload(client, performer_key, data, name="take.wav")
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["code"] == code
    assert error["details"]["fields"]["file"]
    assert not Recording.objects.exists()
    assert stored_files() == []


def test_a_corrupt_flac_is_refused(client, performer_key):
    data = bytearray(flac_bytes())
    for index in range(300, len(data), 41):
        data[index] ^= 0xA5
    response = api_upload(client, performer_key, bytes(data), name="take.flac")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "corrupt_media"
    assert not Recording.objects.exists()


def test_a_missing_file_is_named(client, performer_key):
    response = client.post(API, {"title": "No file"}, **bearer(performer_key))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert "file" in error["details"]["fields"]


def test_a_missing_title_is_named(client, performer_key):
    response = client.post(API, {"file": media_file(wav_bytes(0.3))}, **bearer(performer_key))
    assert response.status_code == 400
    assert "title" in response.json()["error"]["details"]["fields"]
    assert stored_files() == []


@pytest.mark.parametrize("size", [5_000, 600_000], ids=["counted", "content-length"])
def test_files_over_the_limit_are_refused_with_413(client, settings, performer_key, size):
    """Small overshoot: caught by counting bytes; large: by Content-Length
    before the body is read."""
    settings.RECORDING_MAX_UPLOAD_BYTES = 4_000
    data = wav_bytes(size / 32_000)
    response = api_upload(client, performer_key, data)
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "file_too_large"
    assert error["details"]["max_bytes"] == 4_000
    assert "3.9 KB" in error["message"]
    assert not Recording.objects.exists()
    assert stored_files() == []


def test_the_same_file_twice_is_a_duplicate_for_the_same_performer_only(
    client, performer, performer_key, other_performer
):
    data = mp3_bytes()
    first = api_upload(client, performer_key, data, name="a.mp3")
    assert first.status_code == 201
    again = api_upload(client, performer_key, data, name="renamed.mp3", title="Again")
    assert again.status_code == 409
    error = again.json()["error"]
    assert error["code"] == "duplicate_recording"
    assert error["details"]["recording"] == first.json()["uid"]
    assert Recording.objects.filter(performer=performer).count() == 1
    assert len(stored_files()) == 1

    other_key = api_key_create(
        name="k", created_by=other_performer.user, performer=other_performer
    ).secret
    theirs = api_upload(client, other_key, data, name="a.mp3")
    assert theirs.status_code == 201
    assert theirs.json()["sha256"] == first.json()["sha256"]


# --- API: reading ------------------------------------------------------------------------------


def test_the_list_holds_only_my_recordings(client, performer, performer_key, other_performer):
    mine = make_recording(performer, title="Mine")
    make_recording(other_performer, title="Theirs")
    body = client.get(API, **bearer(performer_key)).json()
    assert body["count"] == 1
    assert [r["uid"] for r in body["results"]] == [mine.uid]


def test_the_list_runs_a_constant_number_of_queries(
    client, performer, performer_key, django_assert_num_queries
):
    make_recording(performer, title="One")
    client.get(API, **bearer(performer_key))  # the key's last-use stamp is written once
    with CaptureQueriesContext(connection) as one:
        assert client.get(API, **bearer(performer_key)).json()["count"] == 1
    for index in range(2, 7):
        make_recording(performer, title=f"Take {index}")
    # key lookup, count, page (with provenance joined)
    with django_assert_num_queries(3):
        response = client.get(API, **bearer(performer_key))
    assert response.json()["count"] == 6
    assert len(one.captured_queries) == 3


def test_the_list_is_paginated(client, performer, performer_key):
    for index in range(3):
        make_recording(performer, title=f"Take {index}")
    first = client.get(f"{API}?page_size=2", **bearer(performer_key)).json()
    assert first["count"] == 3 and len(first["results"]) == 2 and first["next"]
    second = client.get(first["next"], **bearer(performer_key)).json()
    assert len(second["results"]) == 1 and second["next"] is None


def test_one_recording_is_visible_to_its_performer_only(
    client, performer, performer_key, other_performer
):
    mine = make_recording(performer, title="Mine")
    theirs = make_recording(other_performer, title="Theirs")
    response = client.get(f"{API}{mine.uid}/", **bearer(performer_key))
    assert response.status_code == 200
    assert response.json()["title"] == "Mine"
    response = client.get(f"{API}{theirs.uid}/", **bearer(performer_key))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert client.get(f"{API}REC-0000000000/", **bearer(performer_key)).status_code == 404


def test_the_schema_documents_the_upload(client):
    schema = client.get("/api/schema/?format=json").json()
    post = schema["paths"]["/api/v1/recordings/"]["post"]
    assert "multipart/form-data" in post["requestBody"]["content"]
    assert {"201", "400", "409", "413", "415"} <= set(post["responses"])
    assert "/api/v1/recordings/{uid}/" in schema["paths"]


# --- The web page ------------------------------------------------------------------------


def test_the_page_sends_anonymous_visitors_to_sign_in(client):
    response = client.get(PAGE)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_the_page_sends_people_without_a_profile_to_create_one(client, outsider):
    client.force_login(outsider)
    response = client.get(PAGE)
    assert response.status_code == 302
    assert response["Location"] == reverse("performer_profile")


def test_the_page_shows_the_form_to_performers(client, performer):
    client.force_login(performer.user)
    response = client.get(reverse("recording_upload"))
    assert response.status_code == 200
    html = response.content.decode()
    for name in ("file", "title", "language", "recording_date", "session_name", "studio"):
        assert f'name="{name}"' in html
    assert 'enctype="multipart/form-data"' in html
    assert "js/upload.js" in html and "css/upload.css" in html
    assert f'data-max-bytes="{django_settings.RECORDING_MAX_UPLOAD_BYTES}"' in html
    assert "<progress" in html


def _page_post(client, data: bytes, name="take.wav", json=False, **fields):
    payload = {
        "title": "Take one",
        "language": "",
        "recording_date": "",
        "session_name": "",
        "studio": "",
        **fields,
        "file": media_file(data, name),
    }
    headers = {"HTTP_ACCEPT": "application/json"} if json else {}
    return client.post(PAGE, payload, **headers)


def test_posting_the_form_uploads_and_redirects_to_the_recording(client, performer):
    client.force_login(performer.user)
    response = _page_post(
        client,
        wav_bytes(1.0),
        title="Laughing fit",
        language="en",
        recording_date="2026-10-02",
        session_name="Improv night",
        studio="Backroom",
    )
    recording = Recording.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/recordings/{recording.uid}/"
    assert recording.title == "Laughing fit"
    assert recording.provenance.session_name == "Improv night"
    assert recording.provenance.studio == "Backroom"
    assert str(recording.provenance.recording_date) == "2026-10-02"


def test_the_script_gets_json_back(client, performer):
    client.force_login(performer.user)
    response = _page_post(client, wav_bytes(0.5), json=True)
    recording = Recording.objects.get()
    assert response.status_code == 201
    assert response.json() == {
        "redirect": f"/recordings/{recording.uid}/",
        "recording": recording.uid,
    }


@pytest.mark.parametrize(
    ("data", "status", "text"),
    [
        (b"definitely not audio\n" * 40, 415, "not WAV, FLAC, MP3, OGG, MP4 or WebM"),
        (wav_bytes(1.0)[:20_000], 400, "looks truncated"),
        (b"", 400, "The file is empty"),
    ],
    ids=["unsupported", "corrupt", "empty"],
)
def test_bad_files_are_shown_on_the_form(client, performer, data, status, text):
    client.force_login(performer.user)
    response = _page_post(client, data, title="Kept title")
    assert response.status_code == status
    html = response.content.decode()
    assert 'id="id_file_error"' in html
    assert text in html
    assert 'value="Kept title"' in html  # what was typed is kept
    assert not Recording.objects.exists()
    assert stored_files() == []


def test_a_missing_title_is_shown_on_the_form(client, performer):
    client.force_login(performer.user)
    response = _page_post(client, wav_bytes(0.3), title="")
    assert response.status_code == 400
    assert 'id="id_title_error"' in response.content.decode()
    assert not Recording.objects.exists()


def test_a_file_over_the_limit_is_shown_on_the_form(client, performer, settings):
    settings.RECORDING_MAX_UPLOAD_BYTES = 2_000
    client.force_login(performer.user)
    response = _page_post(client, wav_bytes(0.5))
    assert response.status_code == 413
    html = response.content.decode()
    assert 'id="id_file_error"' in html
    assert "larger than the 2.0 KB limit" in html
    assert stored_files() == []
    json_response = _page_post(client, wav_bytes(0.5), json=True)
    assert json_response.status_code == 413
    assert json_response.json()["error"]["code"] == "file_too_large"


def test_a_duplicate_links_to_the_recording_already_uploaded(client, performer):
    existing = make_recording(performer, title="Take 1")
    client.force_login(performer.user)
    response = _page_post(client, existing.file.read(), title="Take 1 again")
    assert response.status_code == 409
    html = response.content.decode()
    assert f"You already uploaded this file as {existing.uid}" in html
    assert f'href="/recordings/{existing.uid}/"' in html
    json_response = _page_post(client, existing.file.open().read(), json=True)
    error = json_response.json()["error"]
    assert (json_response.status_code, error["code"]) == (409, "duplicate_recording")
    assert error["details"]["url"] == f"/recordings/{existing.uid}/"


def test_the_page_works_with_a_real_login(client, performer):
    assert client.login(email=performer.user.email, password=PASSWORD)
    assert client.get(PAGE).status_code == 200


def test_a_fresh_performer_account_can_upload(client):
    user = make_user(email="new@example.com")
    performer = make_performer(email=user.email, user=user)
    client.force_login(performer.user)
    assert _page_post(client, wav_bytes(0.4)).status_code == 302
