"""The buyer-facing catalogue on the web: search, a listing's page with each
recording's arc drawn as a timeline, and preview playback. Open to everyone;
it shows what is for sale and never an original file."""

from __future__ import annotations

import mimetypes
import re
from pathlib import PurePath
from urllib.parse import urlencode

from django.http import FileResponse, Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from core.errors import NotFound, ValidationError
from marketplace.models import EmotionalSignature, Recording
from marketplace.selectors_catalogue import (
    CURRENCIES,
    MEDIA_KINDS,
    SORTS,
    catalogue_listing,
    catalogue_preview_recording,
    catalogue_search,
    license_duration_words,
    listing_terms_summary,
    per_unit_rate_phrases,
    preview_url_of,
    reuse_cap_phrases,
    revenue_share_phrase,
    territories_phrase,
    uses_phrase,
)
from marketplace.taxonomy import Authenticity, Emotion, Use, VocalEvent

# Parameters that narrow a search (not sort or paging): shown as removable chips.
_FILTER_LABELS = {
    "q": "Text",
    "emotion": "Emotion",
    "authenticity": "Authenticity",
    "intensity_min": "Intensity from",
    "intensity_max": "Intensity to",
    "valence_min": "Valence from",
    "valence_max": "Valence to",
    "arousal_min": "Arousal from",
    "arousal_max": "Arousal to",
    "language": "Language",
    "performer": "Performer",
    "duration_min": "Seconds from",
    "duration_max": "Seconds to",
    "use": "Permitted use",
    "territory": "Territory",
    "price_from": "Price from",
    "price_to": "Price to",
    "price_min": "Price from (minor units)",
    "price_max": "Price to (minor units)",
    "currency": "Currency",
    "media_kind": "Media",
}
_ERROR_LABELS = {**_FILTER_LABELS, "sort": "Sort", "page": "Page", "page_size": "Page size"}
_CHOICE_LABELS = {
    "emotion": dict(Emotion.choices),
    "authenticity": dict(Authenticity.choices),
    "use": dict(Use.choices),
    "media_kind": MEDIA_KINDS,
}


def _page_url(params, page: int) -> str:
    """The current search on another page."""
    params = params.copy()
    params["page"] = str(page)
    return "?" + urlencode([(k, v) for k in params for v in params.getlist(k) if v != ""])


def _split(params, name: str) -> list[str]:
    """A multi-valued parameter's values, repeated or comma-separated."""
    values = []
    for raw in params.getlist(name):
        for value in raw.split(","):
            value = value.strip()
            if value and value not in values:
                values.append(value)
    return values


def _active_filters(params, *, performer_name: str = "") -> list[dict]:
    """One chip per filter value, each with the link that removes it."""
    chips = []
    for name, label in _FILTER_LABELS.items():
        values = _split(params, name)
        for value in values:
            rest = params.copy()
            rest.setlist(name, [v for v in values if v != value])
            rest.pop("page", None)
            encoded = urlencode([(k, v) for k in rest for v in rest.getlist(k) if v != ""])
            shown = _CHOICE_LABELS.get(name, {}).get(value.lower(), value)
            if name == "performer" and performer_name:
                shown = performer_name
            chips.append({"label": label, "value": shown, "remove_url": "?" + encoded})
    return chips


_RANGES = (
    ("Valence", "valence", "-1", "1", "−1 is unpleasant, 1 is pleasant."),
    ("Arousal", "arousal", "0", "1", "0 is calm, 1 is highly activated."),
    ("Duration in seconds", "duration", "0", "86400", "Any length when empty."),
)


def _ranges(params, errors: dict) -> list[dict]:
    return [
        {
            "legend": legend,
            "min": low,
            "max": high,
            "hint": hint,
            "fields": [
                {
                    "name": f"{stem}_{end}",
                    "label": label,
                    "value": params.get(f"{stem}_{end}", ""),
                    "placeholder": placeholder,
                    "error": (errors.get(f"{stem}_{end}") or [""])[0],
                }
                for end, label, placeholder in (
                    ("min", "From", low),
                    ("max", "To", "Any" if stem == "duration" else high),
                )
            ],
        }
        for legend, stem, low, high, hint in _RANGES
    ]


@require_safe
def catalogue(request):
    params = request.GET
    error = None
    page = None
    try:
        page = catalogue_search(params)
    except ValidationError as exc:
        error = exc
    facets = page.facets if page else {}
    chosen_emotions = {v.lower() for v in _split(params, "emotion")}
    chosen_authenticity = {v.lower() for v in _split(params, "authenticity")}
    chosen_uses = {v.lower() for v in _split(params, "use")}
    performer_name = ""
    if page and page.query.performer is not None and page.listings:
        performer_name = page.listings[0].performer.stage_name
    from django_countries import countries

    context = {
        "page": page,
        "error": error,
        "error_fields": error.details.get("fields", {}) if error else {},
        "values": params,
        "emotions": [
            {
                "code": code,
                "label": label,
                "count": facets.get("emotion", {}).get(code),
                "checked": code in chosen_emotions,
            }
            for code, label in Emotion.choices
        ],
        "authenticities": [
            {
                "code": code,
                "label": label,
                "count": facets.get("authenticity", {}).get(code),
                "checked": code in chosen_authenticity,
            }
            for code, label in Authenticity.choices
        ],
        "uses": [
            {"code": code, "label": label, "checked": code in chosen_uses}
            for code, label in Use.choices
        ],
        "ranges": _ranges(params, error.details.get("fields", {}) if error else {}),
        "media_kinds": MEDIA_KINDS,
        "sorts": SORTS,
        "currencies": CURRENCIES,
        "countries": list(countries),
        "current_sort": page.query.sort
        if page
        else params.get("sort") or ("relevance" if params.get("q") else "newest"),
        "error_items": [
            {"name": name, "label": _ERROR_LABELS.get(name, name), "message": message}
            for name, messages in (error.details.get("fields", {}) if error else {}).items()
            for message in messages
        ],
        "active_filters": _active_filters(params, performer_name=performer_name),
        "results": [_card(listing) for listing in page.listings] if page else [],
    }
    if page:
        context["previous_url"] = (
            _page_url(params, page.query.page - 1) if page.has_previous else None
        )
        context["next_url"] = _page_url(params, page.query.page + 1) if page.has_next else None
    return render(
        request, "marketplace/catalogue/search.html", context, status=400 if error else 200
    )


def _card(listing) -> dict:
    """What a result card shows: the listing, and the recording that matched
    (the first one in the pack's order) as its face."""
    recordings = listing.catalogue_recordings
    matched_ids = getattr(listing, "matched_recording_ids", set())
    matched = [r for r in recordings if r.pk in matched_ids] or recordings
    lead = matched[0] if matched else None
    return {
        "listing": listing,
        "lead": lead,
        "signature": getattr(lead, "signature", None) if lead else None,
        "recording_count": len(recordings),
        "matched_count": len([r for r in recordings if r.pk in matched_ids]),
        "total_seconds": sum(r.duration_seconds for r in recordings),
        "uses": [Use(u).label for u in listing.permitted_uses if u in Use.values],
    }


# --- Listing page -----------------------------------------------------------------------


_TIMELINE_WIDTH = 1000
_BAR_BOTTOM = 86
_TICK_STEPS = (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)


def _clock(seconds: float) -> str:
    seconds = round(seconds, 1)
    if seconds < 60:
        return f"{seconds:g} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}:{rest:02d}"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{rest:02d}"


def arc_timeline(signature: EmotionalSignature | None, duration: float) -> dict:
    """Geometry of the arc drawn as an SVG timeline (viewBox 1000 × 120): x is
    seconds into the recording, one block per segment, taller the more intense,
    labelled with its emotion where it fits. The template draws it; the same
    segments are listed in a table as the text alternative."""
    duration = max(float(duration or 0), 0.001)
    scale = _TIMELINE_WIDTH / duration
    segments = []
    for seg in (signature.arc if signature else []) or []:
        start, end = float(seg["start"]), float(seg["end"])
        intensity = int(seg.get("intensity", 3))
        emotion = seg.get("emotion", "")
        label = Emotion(emotion).label if emotion in Emotion.values else emotion
        height = 26 + (intensity - 1) * 14  # 26 … 82
        x = start * scale
        width = max((end - start) * scale, 2)
        segments.append(
            {
                "start": start,
                "end": end,
                "start_label": _clock(start),
                "end_label": _clock(end),
                "emotion": emotion,
                "label": label,
                "intensity": intensity,
                "note": seg.get("note", ""),
                "x": round(x, 2),
                "y": _BAR_BOTTOM - height,
                "width": round(width, 2),
                "height": height,
                "show_label": width >= len(label) * 8 + 12,
                "text_x": round(x + 6, 2),
                "text_y": _BAR_BOTTOM - 9,
            }
        )
    step = next((s for s in _TICK_STEPS if duration / s <= 10), _TICK_STEPS[-1])
    ticks = []
    t = 0.0
    while t <= duration + 1e-9:
        ticks.append({"x": round(t * scale, 2), "label": _clock(t)})
        t += step
    for tick in ticks:
        tick["anchor"] = "start" if tick["x"] < 20 else ("end" if tick["x"] > 980 else "middle")
    description = "; ".join(
        f"{s['start_label']} to {s['end_label']}: {s['label']}, intensity {s['intensity']} of 5"
        for s in segments
    )
    return {
        "segments": segments,
        "ticks": ticks,
        "duration_label": _clock(duration),
        "description": description,
    }


_PREVIEW_TYPES = {
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/ogg",
    ".m4a": "audio/mp4",
    ".aac": "audio/aac",
    ".wav": "audio/wav",
    ".flac": "audio/flac",
}


def preview_content_type(recording: Recording) -> str:
    suffix = PurePath(recording.preview.name or "").suffix.lower()
    if suffix in _PREVIEW_TYPES:
        return _PREVIEW_TYPES[suffix]
    if suffix in (".webm", ".mp4"):
        kind = "video" if recording.media_kind == Recording.MediaKind.VIDEO else "audio"
        return f"{kind}/{suffix[1:]}"
    return mimetypes.guess_type(recording.preview.name or "")[0] or "application/octet-stream"


def _duration_text(days: int) -> str:
    words = license_duration_words(days)
    return words if words.endswith(("day", "days")) else f"{words} ({days} days)"


@require_safe
def catalogue_detail(request, listing_id: int):
    try:
        listing = catalogue_listing(listing_id)
    except NotFound:
        raise Http404("No such listing in the catalogue.") from None
    recordings = []
    for recording in listing.catalogue_recordings:
        signature = getattr(recording, "signature", None)
        recordings.append(
            {
                "recording": recording,
                "signature": signature,
                "timeline": arc_timeline(signature, recording.duration_seconds),
                "preview_url": preview_url_of(recording),
                "preview_type": preview_content_type(recording) if recording.preview else "",
                "vocal_events": [
                    VocalEvent(v).label
                    for v in (signature.vocal_events if signature else [])
                    if v in VocalEvent.values
                ],
            }
        )
    terms = {
        "summary": listing_terms_summary(listing),
        "duration": _duration_text(listing.duration_days),
        "territories": territories_phrase(listing),
        "uses": uses_phrase(listing.permitted_uses),
        "revenue_share": revenue_share_phrase(listing),
        "per_unit_rates": per_unit_rate_phrases(listing),
        "reuse_caps": reuse_cap_phrases(listing),
    }
    return render(
        request,
        "marketplace/catalogue/detail.html",
        {
            "listing": listing,
            "recordings": recordings,
            "terms": terms,
            "total_seconds": sum(r["recording"].duration_seconds for r in recordings),
        },
    )


# --- Preview playback ---------------------------------------------------------------------

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_UNSATISFIABLE = (-1, -1)
_CHUNK = 64 * 1024


def parse_byte_range(header: str, size: int) -> tuple[int, int] | None:
    """One ``bytes=first-last`` range (RFC 9110 §14) → (start, end) inclusive;
    None to ignore the header and send the whole file (several ranges, or a
    malformed one); ``_UNSATISFIABLE`` when it lies outside the file."""
    match = _RANGE.match(header.strip().replace(" ", ""))
    if not match:
        return None
    first, last = match.groups()
    if first == "" and last == "":
        return None
    if first == "":
        suffix = int(last)
        if suffix == 0 or size == 0:
            return _UNSATISFIABLE
        return max(0, size - suffix), size - 1
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        return _UNSATISFIABLE
    end = int(last) if last else size - 1
    return start, min(end, size - 1)


def _stream(file, length: int):
    try:
        while length > 0:
            chunk = file.read(min(_CHUNK, length))
            if not chunk:
                break
            length -= len(chunk)
            yield chunk
    finally:
        file.close()


@require_safe
def catalogue_preview(request, uid: str):
    """Stream a recording's PREVIEW (never the original) through the storage
    API, with single-range support so players can seek."""
    try:
        recording = catalogue_preview_recording(uid)
    except NotFound:
        raise Http404("No preview for this recording.") from None
    storage, name = recording.preview.storage, recording.preview.name
    try:
        size = storage.size(name)
    except (OSError, NotImplementedError):
        raise Http404("No preview for this recording.") from None
    content_type = preview_content_type(recording)

    byte_range = None
    header = request.headers.get("Range", "")
    # Without validators of our own an If-Range can never match: send it all.
    if header and "If-Range" not in request.headers:
        byte_range = parse_byte_range(header, size)
    if byte_range == _UNSATISFIABLE:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
    elif byte_range is None:
        response = FileResponse(storage.open(name, "rb"), content_type=content_type)
        response["Content-Length"] = str(size)
    else:
        start, end = byte_range
        file = storage.open(name, "rb")
        file.seek(start)
        response = StreamingHttpResponse(
            _stream(file, end - start + 1), status=206, content_type=content_type
        )
        response["Content-Length"] = str(end - start + 1)
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Accept-Ranges"] = "bytes"
    response["Content-Disposition"] = (
        f'inline; filename="{recording.uid}-preview{PurePath(name).suffix.lower()}"'
    )
    response["Cache-Control"] = "private, max-age=300"
    response["X-Content-Type-Options"] = "nosniff"
    return response
