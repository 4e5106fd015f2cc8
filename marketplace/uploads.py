"""Streaming uploads: every uploaded file goes to a temporary file on disk
(never held in memory), hashed and measured chunk by chunk as it arrives.

A file over ``settings.RECORDING_MAX_UPLOAD_BYTES`` is refused as soon as
that is known:

- early, from the request's ``Content-Length``, on views that take exactly
  one recording per request (marked with ``single_recording_upload``): the
  body is not read at all;
- always, by counting the bytes of each file as they arrive (the backstop
  for requests without a trustworthy length, and for requests carrying
  several files, where only the per-file limit applies).

Either way the handler raises ``StopUpload(connection_reset=True)`` (Django
stops parsing, keeps nothing of the file and does not read the rest of the
body) and records the refusal on the request. Views ask ``upload_refusal``
and answer 413 with code ``file_too_large``; fields after the refused file
are missing from ``request.POST``, so views must check the refusal first.

Well-behaved clients read the 413 while still sending; the web page checks
the size in the browser before it sends anything.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler
from django.http import HttpRequest

from marketplace.media import FileTooLarge, file_too_large

_REFUSAL_ATTRIBUTE = "_recording_upload_refusal"
# Multipart framing and the small text fields that travel with one file.
MULTIPART_ALLOWANCE_BYTES = 256 * 1024


def single_recording_upload(view):
    """Mark a view (function or class) as taking one recording per request,
    so a request whose Content-Length is over the limit is refused before
    its body is read."""
    view.single_recording_upload = True
    return view


def _takes_single_recording(request: HttpRequest) -> bool:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return False
    func = match.func
    return bool(
        getattr(func, "single_recording_upload", False)
        or getattr(getattr(func, "view_class", None), "single_recording_upload", False)
        or getattr(getattr(func, "cls", None), "single_recording_upload", False)
    )


def upload_refusal(request) -> FileTooLarge | None:
    """The error to answer with when the upload handler refused a file."""
    request = getattr(request, "_request", request)  # a DRF Request wraps Django's
    return getattr(request, _REFUSAL_ATTRIBUTE, None)


class HashingUploadHandler(TemporaryFileUploadHandler):
    """Stream each file to disk, computing SHA-256 and the byte count as the
    data arrives. The UploadedFile it returns has ``.sha256`` (hex) and
    ``.size``."""

    def __init__(self, request=None):
        super().__init__(request)
        self.max_bytes = settings.RECORDING_MAX_UPLOAD_BYTES
        self._hash = None
        self._received = 0

    def _refuse(self) -> None:
        if self.request is not None:
            setattr(self.request, _REFUSAL_ATTRIBUTE, file_too_large(self.max_bytes))
        raise StopUpload(connection_reset=True)

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        self._too_large_request = (
            content_length is not None
            and content_length > self.max_bytes + MULTIPART_ALLOWANCE_BYTES
            and self.request is not None
            and _takes_single_recording(self.request)
        )
        return None  # let Django's parser do the parsing

    def new_file(self, *args, **kwargs):
        if getattr(self, "_too_large_request", False):
            # Raised here rather than in handle_raw_input, where Django's
            # parser would not catch it.
            self._refuse()
        super().new_file(*args, **kwargs)
        self._hash = hashlib.sha256()
        self._received = 0

    def receive_data_chunk(self, raw_data, start):
        self._received += len(raw_data)
        if self._received > self.max_bytes:
            self._refuse()
        self._hash.update(raw_data)
        self.file.write(raw_data)

    def file_complete(self, file_size):
        uploaded = super().file_complete(file_size)
        uploaded.sha256 = self._hash.hexdigest()
        return uploaded
