"""Previews: a short, lower-quality excerpt made by the platform from the
middle of the take, never the original; built by a Celery task after the
upload commits (eagerly here, and once through a real worker on Redis)."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
from datetime import timedelta

import av
import numpy as np
import pytest
import soundfile
from celery.exceptions import Retry
from django.core.files.base import ContentFile
from django.core.files.storage import InMemoryStorage
from django.core.management import CommandError, call_command
from django.db import OperationalError, connections, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils._os import safe_join

from core.models import AuditEvent
from marketplace import media
from marketplace.models import Recording
from marketplace.services.recordings import (
    PREVIEW_RESEND_MAX,
    recording_create,
    recording_preview_build,
    recording_previews_resend,
)
from marketplace.tasks import (
    PREVIEW_MAX_RETRIES,
    recording_preview_task,
    recording_previews_resend_task,
)
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
    assert recording.preview_failure == Recording.PreviewFailure.MEDIA
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
    # A storage fault is transient: the resend sweep will try it again.
    assert recording.preview_failure == Recording.PreviewFailure.STORAGE


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


# --- Resending previews that were never built ------------------------------------------------


def age(recording: Recording, minutes: float) -> None:
    """Pretend the preview task was last sent ``minutes`` ago."""
    Recording.objects.filter(pk=recording.pk).update(
        preview_requested_at=timezone.now() - timedelta(minutes=minutes)
    )


@pytest.fixture
def broker_down(monkeypatch):
    """The broker refuses every message, as during an outage."""

    def refuse(*args, **kwargs):
        raise OperationalError("Connection refused")

    monkeypatch.setattr(recording_preview_task, "delay", refuse)
    return monkeypatch


def test_a_preview_lost_to_a_broker_outage_is_resent_and_built(
    performer, broker_down, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        recording = upload(performer, wav_bytes(1.0), "take.wav")
    recording.refresh_from_db()
    assert recording.preview_status == Recording.PreviewStatus.PENDING
    assert recording.preview_requested_at is not None
    broker_down.undo()  # the broker is back

    # Not yet: the task may still be on its way.
    with django_capture_on_commit_callbacks(execute=True):
        assert recording_previews_resend(older_than_minutes=15).resent == []
    age(recording, 16)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        report = recording_previews_resend(older_than_minutes=15)

    assert report.resent == [recording.uid] and len(callbacks) == 1
    recording.refresh_from_db()
    assert recording.preview_status == Recording.PreviewStatus.READY
    assert recording.preview_resends == 1
    event = AuditEvent.objects.get(action="recording.preview_resent")
    assert event.target_id == str(recording.pk)
    assert event.data == {"was": "pending", "failure": "", "resend": 1}


def test_only_stale_pending_and_storage_failures_are_resent(performer):
    fresh = make_recording(performer, title="Fresh")
    stale = make_recording(performer, title="Stale")
    ready = recording_preview_build(make_recording(performer, title="Ready"))
    bad_media = make_recording(performer, title="Bad media")
    storage = make_recording(performer, title="Storage")
    removed = make_recording(performer, title="Removed")
    Recording.objects.filter(pk=bad_media.pk).update(
        preview_status="failed", preview_failure="media"
    )
    Recording.objects.filter(pk=storage.pk).update(
        preview_status="failed", preview_failure="storage"
    )
    Recording.objects.filter(pk=removed.pk).update(status=Recording.Status.REMOVED)
    for recording in (stale, ready, bad_media, storage, removed):
        age(recording, 60)
    age(fresh, 5)

    report = recording_previews_resend(older_than_minutes=15)

    assert sorted(report.resent) == sorted([stale.uid, storage.uid])
    storage.refresh_from_db()
    assert (storage.preview_status, storage.preview_failure) == ("pending", "")
    bad_media.refresh_from_db()
    assert (bad_media.preview_status, bad_media.preview_resends) == ("failed", 0)
    # The sweep moved their clock forward: a second sweep now sends nothing.
    assert recording_previews_resend(older_than_minutes=15).resent == []


def test_a_recording_from_before_the_clock_existed_is_resent_by_its_age(performer):
    recording = make_recording(performer)
    Recording.objects.filter(pk=recording.pk).update(
        preview_requested_at=None, created_at=timezone.now() - timedelta(hours=2)
    )
    assert recording_previews_resend(older_than_minutes=15).resent == [recording.uid]


def test_a_preview_resent_too_often_is_given_up_on(performer):
    recording = make_recording(performer)
    Recording.objects.filter(pk=recording.pk).update(preview_resends=PREVIEW_RESEND_MAX)
    age(recording, 60)

    report = recording_previews_resend(older_than_minutes=15)

    assert (report.resent, report.abandoned) == ([], [recording.uid])
    recording.refresh_from_db()
    assert recording.preview_status == Recording.PreviewStatus.FAILED
    assert recording.preview_failure == Recording.PreviewFailure.ABANDONED
    failed = AuditEvent.objects.get(action="recording.preview_failed")
    assert failed.data["failure"] == "abandoned"
    assert recording_previews_resend(older_than_minutes=15).abandoned == []


def test_a_resend_the_broker_refuses_does_not_count(
    performer, broker_down, django_capture_on_commit_callbacks
):
    recording = make_recording(performer)
    age(recording, 60)
    with django_capture_on_commit_callbacks(execute=True):
        report = recording_previews_resend(older_than_minutes=15)
    assert report.not_sent == [recording.uid]
    recording.refresh_from_db()
    assert recording.preview_resends == 0
    assert recording.preview_status == Recording.PreviewStatus.PENDING


def test_the_resend_task_is_scheduled_by_beat(performer, settings):
    from config.celery_app import app

    entry = settings.CELERY_BEAT_SCHEDULE["marketplace-preview-resend"]
    assert entry["task"] == recording_previews_resend_task.name
    assert entry["task"] in app.tasks
    recording = make_recording(performer)
    age(recording, 60)
    result = recording_previews_resend_task.delay(**entry.get("kwargs", {})).get()
    assert result == {"resent": 1, "abandoned": 0, "not_sent": 0}


@pytest.mark.django_db(transaction=True)
def test_a_preview_another_sweep_holds_is_skipped_not_sent_twice():
    """Two sweeps at once (two beat schedulers, or one by hand): a row the
    other has claimed is skipped instead of waited for and sent again."""
    performer = make_performer(email="sweeps@example.com")
    recording = make_recording(performer)  # committed: its preview is built at once
    Recording.objects.filter(pk=recording.pk).update(preview_status="pending", preview="")
    age(recording, 60)
    locked, release = threading.Event(), threading.Event()

    def other_sweep():
        try:
            with transaction.atomic():
                Recording.objects.select_for_update().get(pk=recording.pk)
                locked.set()
                release.wait(10)
        finally:
            connections.close_all()

    thread = threading.Thread(target=other_sweep)
    thread.start()
    try:
        assert locked.wait(10)
        assert recording_previews_resend(older_than_minutes=15).resent == []
    finally:
        release.set()
        thread.join()
    assert recording_previews_resend(older_than_minutes=15).resent == [recording.uid]


# --- manage.py rebuild_previews ----------------------------------------------------------------


def rebuild(*args, **options) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    options.setdefault("no_progress", True)
    try:
        call_command("rebuild_previews", *args, stdout=out, stderr=err, **options)
    except CommandError as exc:
        return exc.returncode, out.getvalue(), err.getvalue() + str(exc)
    return 0, out.getvalue(), err.getvalue()


def test_rebuild_previews_builds_those_not_ready_and_keeps_ready_ones(performer):
    ready = recording_preview_build(make_recording(performer, title="Ready"))
    pending = make_recording(performer, title="Pending")
    abandoned = make_recording(performer, title="Abandoned")
    Recording.objects.filter(pk=abandoned.pk).update(
        preview_status="failed", preview_failure="abandoned"
    )

    code, out, err = rebuild(no_progress=False)

    assert code == 0, out + err
    assert "Building previews" in err and "100%" in err and "2/2" in err
    assert "2 preview(s): 2 ready, 0 failed." in out
    for recording in (pending, abandoned):
        recording.refresh_from_db()
        assert (recording.preview_status, recording.preview_failure) == ("ready", "")
    name = ready.preview.name
    ready.refresh_from_db()
    assert ready.preview.name == name
    code, out, _ = rebuild()
    assert (code, out.strip()) == (0, "Every preview is ready; nothing to build.")


def test_rebuild_previews_all_rebuilds_ready_ones_and_deletes_the_old_files(
    performer, django_capture_on_commit_callbacks
):
    first = recording_preview_build(make_recording(performer, title="One"))
    second = make_recording(performer, title="Two")
    old_name = first.preview.name
    storage = first.preview.storage
    assert storage.exists(old_name)

    with django_capture_on_commit_callbacks(execute=True):
        code, out, _ = rebuild("--all")

    assert code == 0
    assert "2 preview(s): 2 ready, 0 failed." in out
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.preview.name != old_name and storage.exists(first.preview.name)
    assert not storage.exists(old_name)
    assert second.preview_status == Recording.PreviewStatus.READY
    rebuilt = AuditEvent.objects.filter(action="recording.preview_ready", target_id=str(first.pk))
    assert [e.data["rebuilt"] for e in rebuilt.order_by("pk")] == [False, True]


def test_rebuild_previews_names_what_failed_and_exits_1(performer):
    good = make_recording(performer, title="Good")
    gone = make_recording(performer, title="Gone")
    gone.file.storage.delete(gone.file.name)
    damaged = make_recording(performer, title="Damaged")
    damaged.file.storage.delete(damaged.file.name)
    damaged.file.storage.save(damaged.file.name, ContentFile(b"RIFF" + b"\x00" * 400))

    code, out, err = rebuild()

    assert code == 1
    assert "2 preview(s) could not be built" in err
    assert f"failed {gone.uid}: Storage could not be read" in out
    assert f"failed {damaged.uid}: The media cannot be previewed" in out
    assert "3 preview(s): 1 ready, 2 failed." in out
    good.refresh_from_db()
    gone.refresh_from_db()
    assert good.preview_status == Recording.PreviewStatus.READY
    assert (gone.preview_status, gone.preview_failure) == ("failed", "storage")


def test_rebuild_previews_for_named_recordings(performer):
    ready = recording_preview_build(make_recording(performer, title="Ready"))
    other = make_recording(performer, title="Other")
    name = ready.preview.name
    code, out, _ = rebuild(recording=[ready.uid])
    assert code == 0 and "1 preview(s): 1 ready" in out
    ready.refresh_from_db()
    other.refresh_from_db()
    assert ready.preview.name != name  # rebuilt although it was ready
    assert other.preview_status == Recording.PreviewStatus.PENDING
    code, _, err = rebuild(recording=["REC-NOPE"])
    assert code == 1 and "No such recording: REC-NOPE." in err


def test_the_recording_page_says_a_storage_failure_will_be_retried(client, performer):
    recording = make_recording(performer)
    client.force_login(performer.user)
    page = reverse("recording_detail", args=[recording.uid])
    assert "being prepared" in client.get(page).content.decode()
    Recording.objects.filter(pk=recording.pk).update(
        preview_status="failed", preview_failure="storage"
    )
    assert "try again automatically" in client.get(page).content.decode()
    Recording.objects.filter(pk=recording.pk).update(preview_failure="media")
    html = client.get(page).content.decode()
    assert "could not make a preview" in html and "try again" not in html
