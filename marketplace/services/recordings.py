"""Creating recordings from uploaded files, and building their previews.

Interface the rest of the code relies on:

    recording_create(*, performer, by, file, original_filename, title, language="",
                     provenance=None, request=None) -> Recording

``file`` is a Django File (an UploadedFile from the streaming upload handler,
or a File opened on a local path by the importer). The type is read from the
file's bytes; a file whose bytes are not an allowed audio/video type, or that
cannot be decoded, raises core.errors.ValidationError with a stable code
(``unsupported_media_type``, ``corrupt_media``, ``empty_file``,
``file_too_large``; see ``marketplace.media`` for the subclasses, whose
``status_code`` the API uses: 415, 400, 400, 413). The same bytes uploaded
again by the same performer raise core.errors.Conflict(code=
"duplicate_recording", details={"recording": uid}).

    recording_preview_build(recording, *, force=False) -> Recording

Makes the preview (``marketplace.media.make_preview``) from the original,
read through the storage API, and stores it through the storage API.
Idempotent; run by ``marketplace.tasks.recording_preview_task``, and by
``manage.py rebuild_previews`` (``force`` rebuilds a ready preview too).

    recording_previews_resend(*, older_than_minutes=15, ...) -> PreviewResendReport

Sends the preview task again for previews still pending, or failed because
storage could not be read, longer than ``older_than_minutes``: a broker
outage at upload time, or a worker that died with the message, must not
leave a preview "being prepared" for ever. Run by beat through
``marketplace.tasks.recording_previews_resend_task``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files import File
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import PerformerProfile, User
from accounts.selectors import api_key_of
from core.errors import Conflict, PermissionDenied, ValidationError
from core.services import audit_record, audit_records
from marketplace import media
from marketplace.models import Provenance, Recording, RecordingSplit

logger = logging.getLogger(__name__)

TOTAL_BPS = 10_000
_HASH_CHUNK = 1024 * 1024
# BCP 47, loosely: a 2–3 letter language, then subtags (script, region, variant).
_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
PROVENANCE_TEXT_FIELDS = ("session_name", "studio", "annotator")


def _field_error(field: str, message: str, code: str = "validation_error") -> ValidationError:
    return ValidationError(f"{field}: {message}", code=code, details={"fields": {field: [message]}})


# --- Input ---------------------------------------------------------------------------


def _clean_title(title: Any) -> str:
    title = " ".join(str(title or "").split())
    if not title:
        raise _field_error("title", "Give the recording a title.")
    if len(title) > 200:
        raise _field_error("title", "At most 200 characters.")
    return title


def _clean_language(language: Any) -> str:
    language = str(language or "").strip()
    if not language:
        return ""
    if len(language) > 35 or not _LANGUAGE_TAG.match(language):
        raise _field_error(
            "language", f"“{language[:40]}” is not a language tag such as en, es-MX or pt-BR."
        )
    # Conventional case: language lower, region upper, script title.
    parts = language.split("-")
    tidy = [parts[0].lower()]
    for part in parts[1:]:
        if len(part) == 2 and part.isalpha():
            tidy.append(part.upper())
        elif len(part) == 4 and part.isalpha():
            tidy.append(part.title())
        else:
            tidy.append(part.lower())
    return "-".join(tidy)


def _clean_provenance(values: Mapping[str, Any] | None) -> dict[str, Any]:
    values = dict(values or {})
    unknown = sorted(set(values) - {"recording_date", *PROVENANCE_TEXT_FIELDS})
    if unknown:
        raise _field_error("provenance", f"Unknown field(s): {', '.join(unknown)}.")
    cleaned: dict[str, Any] = {"recording_date": None}
    raw_date = values.get("recording_date")
    if raw_date not in (None, ""):
        if isinstance(raw_date, str):
            try:
                raw_date = date.fromisoformat(raw_date.strip())
            except ValueError:
                raise _field_error("recording_date", "Give the date as YYYY-MM-DD.") from None
        if not isinstance(raw_date, date):
            raise _field_error("recording_date", "Give the date as YYYY-MM-DD.")
        if raw_date > timezone.localdate():
            raise _field_error("recording_date", "The recording date cannot be in the future.")
        cleaned["recording_date"] = raw_date
    for name in PROVENANCE_TEXT_FIELDS:
        value = values.get(name) or ""
        if not isinstance(value, str):
            raise _field_error(name, "Must be text.")
        value = " ".join(value.split())
        if len(value) > 200:
            raise _field_error(name, "At most 200 characters.")
        cleaned[name] = value
    return cleaned


def _clean_filename(name: Any) -> str:
    name = os.path.basename(str(name or "").replace("\\", "/")).strip()
    name = "".join(ch for ch in name if ch.isprintable())
    return name[:255] or "recording"


def _opened_on_its_path(file: File) -> bool:
    """Whether ``file.name`` is the path of the very file it has open."""
    name = getattr(file, "name", None)
    fileno = getattr(getattr(file, "file", file), "fileno", None)
    if not isinstance(name, str) or not callable(fileno):
        return False
    try:
        return os.path.samestat(os.fstat(fileno()), os.stat(name))
    except (OSError, ValueError, AttributeError):
        return False


@contextmanager
def _local_path(file: File) -> Iterator[str]:
    """A path on this machine holding the file's bytes: the upload handler's
    temporary file, the file a File was opened on, or else a streamed copy
    (e.g. a ContentFile) in a temporary file removed afterwards."""
    temporary_path = getattr(file, "temporary_file_path", None)
    if callable(temporary_path):
        yield temporary_path()
        return
    if _opened_on_its_path(file):
        yield file.name
        return
    handle, copy_path = tempfile.mkstemp(prefix="recording-", dir=settings.FILE_UPLOAD_TEMP_DIR)
    try:
        with os.fdopen(handle, "wb") as out:
            if hasattr(file, "seek"):
                file.seek(0)
            for chunk in (
                file.chunks(_HASH_CHUNK)
                if hasattr(file, "chunks")
                else iter(lambda: file.read(_HASH_CHUNK), b"")
            ):
                out.write(chunk)
        yield copy_path
    finally:
        Path(copy_path).unlink(missing_ok=True)


def _sha256_of(path: str, file: File, size: int) -> str:
    """The upload handler's hash when it has one for these bytes, else
    computed now, streaming."""
    known = getattr(file, "sha256", None)
    if isinstance(known, str) and len(known) == 64 and getattr(file, "size", None) == size:
        return known
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _duplicate(performer: PerformerProfile, sha256: str) -> Conflict | None:
    existing = (
        Recording.objects.filter(performer=performer, sha256=sha256)
        .values_list("uid", "title")
        .first()
    )
    if existing is None:
        return None
    uid, title = existing
    message = f"You already uploaded this file as {uid} (“{title}”)."
    return Conflict(
        message,
        code="duplicate_recording",
        details={"recording": uid, "fields": {"file": [message]}},
    )


def _enqueue_preview(recording_id: int) -> bool:
    """Send the preview task; False when the broker refused it."""
    from marketplace.tasks import recording_preview_task

    try:
        recording_preview_task.delay(recording_id)
    except Exception:
        # The recording is saved; a broker outage only delays its preview,
        # which stays "pending" until recording_previews_resend sends the
        # task again.
        logger.exception("Could not enqueue the preview of recording %s", recording_id)
        return False
    return True


# --- Create ------------------------------------------------------------------------------


def recording_create(
    *,
    performer: PerformerProfile,
    by: User,
    file: File,
    original_filename: str,
    title: str,
    language: str = "",
    provenance: Mapping[str, Any] | None = None,
    request: HttpRequest | None = None,
) -> Recording:
    """Check the file, store it and record it: recording, provenance started
    from the performer's profile, a 100% split for the uploader and an audit
    record, in one transaction. The preview is built after commit.

    Checks run cheapest first (input, size, type from the bytes, duplicate,
    then decoding); nothing is stored until all pass, and a failure after
    the file reached storage deletes it again."""
    if by is None or performer.user_id != by.pk:
        raise PermissionDenied(
            "Only the performer can upload recordings to their profile.",
            code="not_your_profile",
        )
    title = _clean_title(title)
    language = _clean_language(language)
    extra = _clean_provenance(provenance)
    original_filename = _clean_filename(original_filename or getattr(file, "name", ""))

    with _local_path(file) as path:
        size = os.path.getsize(path)
        if size == 0:
            raise media.empty_file()
        if size > settings.RECORDING_MAX_UPLOAD_BYTES:
            raise media.file_too_large()
        media_type = media.sniff_file(path)
        sha256 = _sha256_of(path, file, size)
        duplicate = _duplicate(performer, sha256)
        if duplicate is not None:
            raise duplicate
        facts = media.probe(path, media_type)
        return _store(
            performer=performer,
            by=by,
            file=file,
            path=path,
            size=size,
            sha256=sha256,
            facts=facts,
            original_filename=original_filename,
            title=title,
            language=language,
            provenance=extra,
            request=request,
        )


def _store(
    *,
    performer: PerformerProfile,
    by: User,
    file: File,
    path: str,
    size: int,
    sha256: str,
    facts: media.MediaFacts,
    original_filename: str,
    title: str,
    language: str,
    provenance: dict[str, Any],
    request: HttpRequest | None,
) -> Recording:
    recording = Recording(
        performer=performer,
        title=title,
        language=language,
        original_filename=original_filename,
        size_bytes=size,
        sha256=sha256,
        media_kind=facts.media_kind,
        container=facts.container,
        mime_type=facts.mime_type,
        codec=facts.codec,
        duration_seconds=facts.duration_seconds,
        sample_rate=facts.sample_rate,
        channels=facts.channels,
        width=facts.width,
        height=facts.height,
        frame_rate=facts.frame_rate,
        preview_status=Recording.PreviewStatus.PENDING,
        preview_requested_at=timezone.now(),
    )
    try:
        with transaction.atomic():
            # Stored under a name from the detected type, never the client's.
            _save_original(recording, file, path, f"original.{facts.extension}")
            recording.save()
            Provenance.objects.create(
                recording=recording,
                performer_name=performer.legal_name.strip(),
                performer_contact=performer.contact_email.strip(),
                **provenance,
            )
            RecordingSplit.objects.create(
                recording=recording, performer=performer, share_bps=TOTAL_BPS
            )
            audit_record(
                action="recording.uploaded",
                actor=by,
                target=recording,
                request=request,
                api_key=api_key_of(request),
                data={
                    "uid": recording.uid,
                    "sha256": sha256,
                    "size_bytes": size,
                    "container": facts.container,
                    "media_kind": facts.media_kind,
                    "duration_seconds": facts.duration_seconds,
                    "original_filename": original_filename,
                },
            )
            recording_id = recording.pk
            transaction.on_commit(lambda: _enqueue_preview(recording_id))
    except IntegrityError:
        _delete_stored(recording.file)
        # The same file arrived twice at once: the other upload won the
        # unique constraint (performer, sha256).
        duplicate = _duplicate(performer, sha256)
        if duplicate is not None:
            raise duplicate from None
        raise
    except BaseException:
        _delete_stored(recording.file)
        raise
    return recording


def _save_original(recording: Recording, file: File, path: str, name: str) -> None:
    """Through the storage API. The upload handler's temporary file is handed
    over as it is, so local storage moves it instead of copying it."""
    temporary_path = getattr(file, "temporary_file_path", None)
    if callable(temporary_path) and temporary_path() == path:
        file.seek(0)
        recording.file.save(name, file, save=False)
        return
    with open(path, "rb") as handle:
        recording.file.save(name, File(handle), save=False)


def _delete_stored(field_file) -> None:
    name = getattr(field_file, "name", "")
    if not name:
        return
    try:
        field_file.storage.delete(name)
    except Exception:  # cleanup must not hide the real error
        logger.warning("Could not delete %s after a failed upload", name, exc_info=True)


# --- Preview --------------------------------------------------------------------------------


class PreviewSourceUnavailable(Exception):
    """The original could not be read from storage: worth retrying."""


@contextmanager
def _original_on_disk(recording: Recording) -> Iterator[str]:
    """A local path to the original: the storage's own file when it has one
    on this machine (local disk), else a temporary copy streamed from the
    storage (S3 …). Raises OSError when storage cannot give the file."""
    storage = recording.file.storage
    try:
        local = storage.path(recording.file.name)
    except NotImplementedError:
        local = None
    if local is not None and os.path.isfile(local):
        yield local
        return
    handle, copy_path = tempfile.mkstemp(
        prefix="original-", suffix=f".{recording.container}", dir=settings.FILE_UPLOAD_TEMP_DIR
    )
    try:
        with os.fdopen(handle, "wb") as out, storage.open(recording.file.name, "rb") as source:
            shutil.copyfileobj(source, out, _HASH_CHUNK)
        yield copy_path
    finally:
        Path(copy_path).unlink(missing_ok=True)


def _facts_of(recording: Recording) -> media.MediaFacts:
    return media.MediaFacts(
        container=recording.container,
        media_kind=recording.media_kind,
        mime_type=recording.mime_type,
        extension=recording.container,
        codec=recording.codec,
        duration_seconds=recording.duration_seconds,
        sample_rate=recording.sample_rate,
        channels=recording.channels,
        width=recording.width,
        height=recording.height,
        frame_rate=recording.frame_rate,
    )


def _is_ready(recording: Recording) -> bool:
    return recording.preview_status == Recording.PreviewStatus.READY and bool(recording.preview)


def recording_preview_build(recording: Recording, *, force: bool = False) -> Recording:
    """Build and store the recording's preview; set ``preview_status`` to
    ready, or failed when the media cannot be previewed.

    Idempotent: a recording whose preview is ready is left alone (unless
    ``force``: then it is rebuilt and the old file deleted after commit),
    and when two workers build at once (a redelivered task) the first to
    finish keeps its file and the other discards its own. Raises
    ``PreviewSourceUnavailable`` when storage cannot be read, so the task
    retries."""
    recording = Recording.objects.get(pk=recording.pk)
    if _is_ready(recording) and not force:
        return recording
    if not recording.file:
        return _preview_failed(recording, "The recording has no file.")
    try:
        with _original_on_disk(recording) as source:
            preview = media.make_preview(source, _facts_of(recording))
    except media.MediaError as exc:
        return _preview_failed(recording, exc.message)
    except (OSError, FileNotFoundError) as exc:
        raise PreviewSourceUnavailable(str(exc)) from exc

    try:
        with transaction.atomic():
            locked = Recording.objects.select_for_update().get(pk=recording.pk)
            if _is_ready(locked) and not force:
                return locked  # another worker finished first
            old_name = locked.preview.name if locked.preview else ""
            with preview.path.open("rb") as handle:
                locked.preview.save(f"preview.{preview.extension}", File(handle), save=False)
            locked.preview_status = Recording.PreviewStatus.READY
            locked.preview_failure = Recording.PreviewFailure.NONE
            try:
                locked.save(
                    update_fields=["preview", "preview_status", "preview_failure", "updated_at"]
                )
            except BaseException:
                _delete_stored(locked.preview)
                raise
            if old_name and old_name != locked.preview.name:
                name, storage = old_name, locked.preview.storage
                transaction.on_commit(lambda: storage.delete(name))
            audit_record(
                action="recording.preview_ready",
                target=locked,
                data={
                    "preview": locked.preview.name,
                    "bytes": preview.path.stat().st_size,
                    "rebuilt": bool(old_name),
                },
            )
        return locked
    finally:
        preview.path.unlink(missing_ok=True)


def _preview_failed(
    recording: Recording,
    reason: str,
    failure: str = Recording.PreviewFailure.MEDIA,
) -> Recording:
    with transaction.atomic():
        locked = Recording.objects.select_for_update().get(pk=recording.pk)
        if _is_ready(locked):
            return locked
        locked.preview_status = Recording.PreviewStatus.FAILED
        locked.preview_failure = failure
        locked.save(update_fields=["preview_status", "preview_failure", "updated_at"])
        audit_record(
            action="recording.preview_failed",
            target=locked,
            data={"reason": reason, "failure": failure},
        )
    logger.warning("Preview of %s failed: %s", recording.uid, reason)
    return locked


def recording_preview_mark_failed(recording_id: int, reason: str) -> None:
    """For the task (and ``rebuild_previews``) when storage could not be
    read: a transient failure, which ``recording_previews_resend`` retries."""
    recording = Recording.objects.filter(pk=recording_id).first()
    if recording is not None:
        _preview_failed(recording, reason, Recording.PreviewFailure.STORAGE)


# --- Resending previews that never got built ---------------------------------------------

PREVIEW_RESEND_AFTER_MINUTES = 15
# After this many resends a preview is given up on (marked failed,
# "abandoned"), so a recording no worker can preview is not resent for ever;
# ``manage.py rebuild_previews`` still builds it by hand.
PREVIEW_RESEND_MAX = 8
PREVIEW_RESEND_BATCH = 500


@dataclass
class PreviewResendReport:
    resent: list[str] = field(default_factory=list)  # recording uids
    abandoned: list[str] = field(default_factory=list)
    not_sent: list[str] = field(default_factory=list)  # the broker refused them

    def as_dict(self) -> dict[str, int]:
        return {
            "resent": len(self.resent),
            "abandoned": len(self.abandoned),
            "not_sent": len(self.not_sent),
        }


def recording_previews_resend(
    *,
    older_than_minutes: int = PREVIEW_RESEND_AFTER_MINUTES,
    max_resends: int = PREVIEW_RESEND_MAX,
    limit: int = PREVIEW_RESEND_BATCH,
) -> PreviewResendReport:
    """Send the preview task again for every preview pending, or failed
    because storage could not be read, whose task was last sent more than
    ``older_than_minutes`` ago. Failed media is not resent: it would fail
    the same way.

    Safe with several beat schedulers or a sweep run by hand at once: rows
    are claimed with ``SKIP LOCKED`` and their ``preview_requested_at``
    moves forward in the same transaction, so each stale preview is sent
    once per sweep. Tasks are sent after commit; one the broker refuses
    does not count as a resend and is tried again at the next sweep."""
    cutoff = timezone.now() - timedelta(minutes=older_than_minutes)
    report = PreviewResendReport()
    with transaction.atomic():
        stale = (
            Recording.objects.filter(
                Q(preview_status=Recording.PreviewStatus.PENDING)
                | Q(
                    preview_status=Recording.PreviewStatus.FAILED,
                    preview_failure=Recording.PreviewFailure.STORAGE,
                )
            )
            .filter(
                Q(preview_requested_at__lt=cutoff)
                | Q(preview_requested_at__isnull=True, created_at__lt=cutoff)
            )
            .exclude(status=Recording.Status.REMOVED)
            .order_by(F("preview_requested_at").asc(nulls_first=True), "pk")
            .select_for_update(skip_locked=True)
            .only("pk", "uid", "preview_status", "preview_failure", "preview_resends")[:limit]
        )
        resend: list[Recording] = []
        for recording in stale:
            if recording.preview_resends >= max_resends:
                _preview_failed(
                    recording,
                    f"No worker built the preview after {recording.preview_resends} resends.",
                    Recording.PreviewFailure.ABANDONED,
                )
                report.abandoned.append(recording.uid)
            else:
                resend.append(recording)
        if not resend:
            return report
        now = timezone.now()
        Recording.objects.filter(pk__in=[r.pk for r in resend]).update(
            preview_status=Recording.PreviewStatus.PENDING,
            preview_failure=Recording.PreviewFailure.NONE,
            preview_requested_at=now,
            preview_resends=F("preview_resends") + 1,
            updated_at=now,
        )
        audit_records(
            action="recording.preview_resent",
            targets=[
                (
                    r,
                    {
                        "was": r.preview_status,
                        "failure": r.preview_failure,
                        "resend": r.preview_resends + 1,
                    },
                )
                for r in resend
            ],
        )
        report.resent = [r.uid for r in resend]

        def send() -> None:
            refused = [r for r in resend if not _enqueue_preview(r.pk)]
            if refused:
                report.not_sent = [r.uid for r in refused]
                Recording.objects.filter(pk__in=[r.pk for r in refused]).update(
                    preview_resends=F("preview_resends") - 1
                )

        transaction.on_commit(send)
    return report
