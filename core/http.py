"""Streaming files with HTTP Range support (RFC 9110 §14): one byte range
per request, 206 with Content-Range, 416 for a range outside the file."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from django.http import HttpResponse, StreamingHttpResponse

CHUNK = 256 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str, size: int) -> tuple[int, int] | bool | None:
    """(start, end inclusive) for a satisfiable single range, None for no
    (or an unsupported multi-) range, False for an unsatisfiable one."""
    match = _RANGE.match(header.strip()) if header else None
    if not match:
        return None
    first, last = match.groups()
    if first == "" and last == "":
        return None
    if first == "":  # suffix: the last N bytes
        length = int(last)
        if length == 0:
            return False
        return max(0, size - length), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if start >= size or end < start:
        return False
    return start, min(end, size - 1)


def ranged_file_response(
    request,
    open_file: Callable[[], object],
    *,
    size: int,
    content_type: str,
    filename: str | None = None,
    inline: bool = False,
    on_progress: Callable[[int, bool], None] | None = None,
) -> HttpResponse:
    """Stream ``open_file()`` (a binary file object) in chunks. ``on_progress``
    is called with the bytes sent and whether the response finished."""
    byte_range = parse_range(request.headers.get("Range", ""), size)
    if byte_range is False:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    start, end = byte_range if byte_range else (0, size - 1)
    length = end - start + 1 if size else 0

    def stream() -> Iterator[bytes]:
        sent = 0
        finished = False
        handle = open_file()
        try:
            handle.seek(start)
            remaining = length
            while remaining > 0:
                chunk = handle.read(min(CHUNK, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
                sent += len(chunk)
                yield chunk
            finished = remaining == 0
        finally:
            handle.close()
            if on_progress is not None:
                on_progress(sent, finished)

    response = StreamingHttpResponse(
        stream(), status=206 if byte_range else 200, content_type=content_type
    )
    response["Content-Length"] = str(length)
    response["Accept-Ranges"] = "bytes"
    if byte_range:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    if filename:
        disposition = "inline" if inline else "attachment"
        safe = filename.replace('"', "")
        response["Content-Disposition"] = f'{disposition}; filename="{safe}"'
    response["Cache-Control"] = "private, no-store"
    return response
