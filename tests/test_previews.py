"""Previews: a short, lower-quality excerpt made by the platform from the
middle of the take, never the original; built by a Celery task after the
upload commits (eagerly here, and once through a real worker on Redis)."""

from __future__ import annotations

import hashlib
import io
import os
import time

import av
import numpy as np
import pytest
import soundfile
from celery.exceptions import Retry
from django.core.files.base import ContentFile
from django.core.files.storage import InMemoryStorage
from django.utils._os import safe_join

from core.models import AuditEvent
from marketplace import media
from marketplace.models import Recording
from marketplace.services.recordings import recording_create, recording_preview_build
from marketplace.tasks import PREVIEW_MAX_RETRIES, recording_preview_task
from tests.celery_support import running_worker
from tests.factories import make_performer
from tests.factories_marketplace import make_recording, wav_bytes
from tests.test_media import video_bytes


def upload(performer, data: bytes, name: str, title: str = "Take") -> Recording:
    return recording_create(
        performer=performer,
        by=performer.user,
        file=ContentFile(data, name=name),
        original_filename=name,
        title=title,
    )


def read(field_file) -> bytes:
    with field_file.open("rb") as handle:
        return handle.read()


def describe(data: bytes) -> dict:
    """What PyAV sees in a file held in memory."""
    with av.open(io.BytesIO(data)) as container:
        audio = next(iter(container.streams.audio), None)
        video = next(iter(container.streams.video), None)
        return {
            "format": container.format.name,
            "duration": container.duration / 1_000_000,
            "bit_rate": container.bit_rate,
            "audio_codec": audio.codec_context.name if audio else None,
            "sample_rate": audio.codec_context.sample_rate if audio else None,
            "channels": audio.codec_context.channels if audio else None,
            "video_codec": video.codec_context.name if video else None,
            "width": video.codec_context.width if video else None,
            "height": video.codec_context.height if video else None,
        }


def silence_tone_silence(seconds_each: float = 2.0, rate: int = 44_100) -> bytes:
    """Quiet, then a loud tone, then quiet again: only a preview taken from
    the middle is loud."""
    quiet = np.zeros(int(seconds_each * rate), dtype=np.float32)
    t = np.arange(int(seconds_each * rate)) / rate
    loud = (0.8 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)
    signal = np.concatenate([quiet, loud, quiet])
    stereo = np.stack([signal, signal], axis=1)
    buffer = io.BytesIO()
    soundfile.write(buffer, stereo, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def rms(data: bytes) -> float:
    with av.open(io.BytesIO(data)) as container:
        samples = np.concatenate(
            [frame.to_ndarray().astype(np.float64).ravel() for frame in container.decode(audio=0)]
        )
    return float(np.sqrt(np.mean(samples**2)))


pytestmark = pytest.mark.django_db


def test_the_preview_window_is_the_middle_and_at_most_half():
    assert media.preview_window(60.0, 12) == (24.0, 12.0)
    assert media.preview_window(10.0, 12) == (2.5, 5.0)
    assert media.preview_window(2.0, 12) == (0.5, 1.0)


def test_an_audio_preview_is_a_short_lower_quality_mp3(performer, settings):
    settings.PREVIEW_SECONDS = 3
    original = silence_tone_silence()  # 6 s, 44.1 kHz stereo PCM
    recording = upload(performer, original, "take.wav")
    assert recording.preview_status == Recording.PreviewStatus.PENDING

    recording = recording_preview_build(recording)

    assert recording.preview_status == Recording.PreviewStatus.READY
    assert recording.preview.name == f"previews/{recording.uid}.mp3"
    preview = read(recording.preview)
    assert hashlib.sha256(preview).hexdigest() != recording.sha256
    facts = describe(preview)
    source = describe(original)
    assert facts["format"] == "mp3"
    assert (facts["sample_rate"], facts["channels"]) == (22_050, 1)
    assert facts["duration"] == pytest.approx(3.0, abs=0.15)
    assert facts["duration"] < source["duration"]
    assert facts["bit_rate"] <= 64_000 < source["bit_rate"]
    assert len(preview) < len(original) / 10
    # The excerpt is the loud middle, not the quiet start.
    assert rms(preview) > 0.3
    assert AuditEvent.objects.filter(action="recording.preview_ready").count() == 1


def test_a_short_take_previews_at_most_half_of_itself(performer):
    recording = recording_preview_build(make_recording(performer, seconds=2.0))
    assert describe(read(recording.preview))["duration"] == pytest.approx(1.0, abs=0.1)


@pytest.mark.parametrize("fmt", ["mp4", "webm"])
def test_a_video_preview_is_a_small_low_bitrate_mp4(performer, settings, fmt):
    settings.PREVIEW_SECONDS = 1
    original = video_bytes(fmt, seconds=3.0, width=640, height=360, fps=12)
    recording = recording_preview_build(upload(performer, original, f"clip.{fmt}"))
    assert recording.preview_status == Recording.PreviewStatus.READY
    assert recording.preview.name == f"previews/{recording.uid}.mp4"
    preview = read(recording.preview)
    facts = describe(preview)
    assert facts["format"].startswith("mov,mp4")
    assert (facts["video_codec"], facts["audio_codec"]) == ("h264", "aac")
    assert (facts["width"], facts["height"]) == (320, 180)
    assert (facts["sample_rate"], facts["channels"]) == (22_050, 1)
    assert facts["duration"] == pytest.approx(1.0, abs=0.25)
    assert facts["duration"] < describe(original)["duration"]
    assert preview != original


def test_building_twice_changes_nothing(performer):
    recording = recording_preview_build(make_recording(performer))
    name, data = recording.preview.name, read(recording.preview)
    again = recording_preview_build(recording)
    assert (again.preview.name, read(again.preview)) == (name, data)
    assert AuditEvent.objects.filter(action="recording.preview_ready").count() == 1


def test_a_recording_that_cannot_be_previewed_is_marked_failed(performer):
    recording = make_recording(performer)
    # The stored original is damaged after upload (e.g. a storage fault).
    recording.file.storage.delete(recording.file.name)
    recording.file.storage.save(recording.file.name, ContentFile(b"RIFF" + b"\x00" * 400))
    recording = recording_preview_build(recording)
    assert recording.preview_status == Recording.PreviewStatus.FAILED
    assert not recording.preview
    assert AuditEvent.objects.filter(action="recording.preview_failed").exists()


def test_the_task_retries_a_missing_original_then_marks_it_failed(performer):
    recording = make_recording(performer)
    recording.file.storage.delete(recording.file.name)
    with pytest.raises(Retry):
        recording_preview_task.apply(args=[recording.pk], retries=0, throw=True)
    recording.refresh_from_db()
    assert recording.preview_status == Recording.PreviewStatus.PENDING
    last = recording_preview_task.apply(args=[recording.pk], retries=PREVIEW_MAX_RETRIES)
    assert last.get() == "failed"
    recording.refresh_from_db()
    assert recording.preview_status == Recording.PreviewStatus.FAILED


def test_the_task_ignores_a_recording_that_is_gone(db):
    assert recording_preview_task.delay(987_654).get() == "missing"


class NoLocalPathStorage(InMemoryStorage):
    """Like S3: files are reachable only through the storage API."""

    def path(self, name):
        raise NotImplementedError("This storage has no local paths.")

    def _relative_path(self, name):
        return os.path.relpath(safe_join(self.location, name), self.location)


def test_storage_without_local_paths_works(performer, settings):
    """The original is copied from storage to a temporary file, and the
    preview saved back through the storage API."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "tests.test_previews.NoLocalPathStorage"},
    }
    recording = make_recording(performer, seconds=1.0)
    with pytest.raises(NotImplementedError):
        recording.file.storage.path(recording.file.name)
    recording = recording_preview_build(recording)
    assert recording.preview_status == Recording.PreviewStatus.READY
    assert describe(read(recording.preview))["format"] == "mp3"


def test_the_upload_enqueues_the_preview_after_commit(
    performer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        recording = upload(performer, wav_bytes(1.0), "take.wav")
        assert Recording.objects.get(pk=recording.pk).preview_status == "pending"
    assert len(callbacks) == 1
    recording.refresh_from_db()
    assert recording.preview_status == Recording.PreviewStatus.READY


def test_a_failed_upload_enqueues_nothing(performer, django_capture_on_commit_callbacks):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(media.UnsupportedMediaType),
    ):
        upload(performer, b"not media at all\n" * 10, "take.wav")
    assert callbacks == []


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_builds_the_preview(tmp_path, settings):
    performer = make_performer(email="worker-preview@example.com")
    with running_worker(tmp_path, extra_env={"MEDIA_ROOT": str(settings.MEDIA_ROOT)}) as worker:
        recording = make_recording(performer, seconds=3.0)  # enqueued on commit
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            recording.refresh_from_db()
            if recording.preview_status != Recording.PreviewStatus.PENDING:
                break
            time.sleep(0.25)
        assert worker.wait_for_output("marketplace.tasks.recording_preview_task"), worker.output()
    assert recording.preview_status == Recording.PreviewStatus.READY, worker.output()
    preview = read(recording.preview)
    facts = describe(preview)
    assert facts["format"] == "mp3"
    assert facts["duration"] == pytest.approx(1.5, abs=0.1)
