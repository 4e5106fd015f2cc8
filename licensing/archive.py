"""A license's files as one zip, streamed: the archive is written into a
small in-memory sink and handed to the client chunk by chunk while each
original is read, so neither memory nor disk ever holds the whole archive.

Layout (matching the Croissant manifest's ``contentUrl``s)::

    manifest.json       the provenance manifest (Croissant JSON-LD)
    certificate.json    the signed license certificate
    files/<uid>.<ext>   each licensed original

Zip entries are written with data descriptors (sizes follow each file), as
a non-seekable output requires; every file is logged in DownloadLog with the
bytes actually sent.
"""

from __future__ import annotations

import json
import time
import zipfile
from collections.abc import Iterator

from licensing.certificates import certificate_for
from licensing.croissant import manifest_for
from licensing.downloads import (
    LicenseNotActive,
    ResolvedDownload,
    download_log_progress,
    download_log_start,
)
from licensing.models import License
from licensing.selectors import license_is_usable
from marketplace.models import Recording

CHUNK = 256 * 1024


class _Sink:
    """A write-only stream: zipfile writes into it, the generator drains it."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def drain(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def _entry(name: str, size: int = 0, *, compress: bool = False) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=time.gmtime()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    info.file_size = size  # lets zipfile choose ZIP64 for files over 4 GiB
    info.external_attr = 0o644 << 16
    return info


def archive_filename(license: License) -> str:
    return f"{license.uid}.zip"


def license_archive_prepare(license: License) -> tuple[list[Recording], list[Recording]]:
    """(files to send, files left out because the recording is suspended or
    removed). Raises LicenseNotActive when the license is not usable now."""
    if not license_is_usable(license):
        raise LicenseNotActive(
            f"License {license.uid} is {license.get_status_display().lower()}; "
            "its files cannot be downloaded."
        )
    recordings = list(license.recordings.all().order_by("license_items__id"))
    sendable = [r for r in recordings if r.status == Recording.Status.ACTIVE]
    left_out = [r for r in recordings if r.status != Recording.Status.ACTIVE]
    return sendable, left_out


def license_archive_stream(
    *,
    license: License,
    recordings: list[Recording],
    left_out: list[Recording],
    user_id: int,
    api_key_prefix: str = "",
    ip: str | None = None,
) -> Iterator[bytes]:
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", allowZip64=True) as archive:
        manifest = json.dumps(manifest_for(license), indent=2, ensure_ascii=False)
        archive.writestr(_entry("manifest.json", compress=True), manifest)
        certificate = json.dumps(certificate_for(license), indent=2, ensure_ascii=False)
        archive.writestr(_entry("certificate.json", compress=True), certificate)
        if left_out:
            note = "".join(
                f"{r.uid} ({r.title}) is {r.get_status_display().lower()} and was left out.\n"
                for r in left_out
            )
            archive.writestr(_entry("LEFT-OUT.txt", compress=True), note)
        yield sink.drain()
        for recording in recordings:
            resolved = ResolvedDownload(license, recording, user_id, api_key_prefix)
            log = download_log_start(resolved=resolved, byte_range="", ip=ip, kind="zip")
            sent, finished = 0, False
            try:
                storage, name = recording.file.storage, recording.file.name
                entry = _entry(f"files/{recording.uid}.{recording.container}", storage.size(name))
                with storage.open(name, "rb") as source, archive.open(entry, "w") as target:
                    while chunk := source.read(CHUNK):
                        target.write(chunk)
                        sent += len(chunk)
                        data = sink.drain()
                        if data:
                            yield data
                finished = True
            finally:
                download_log_progress(log.pk, sent, finished)
            if data := sink.drain():
                yield data
    yield sink.drain()  # the central directory, written when the archive closes
