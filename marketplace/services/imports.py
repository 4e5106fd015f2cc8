"""Batch import of a session's takes from a CSV manifest (web UI and
``manage.py import_recordings``).

The flow has two steps, so that files can arrive one at a time (one XHR per
file in the browser, one file after another from disk in the command):

1. ``import_batch_start`` reads the manifest. A manifest with unknown or
   missing columns, that is not UTF-8, empty or over 1,000 rows is refused as
   a whole and nothing is created. Otherwise every row becomes an
   ``ImportRow``: PENDING when its values are valid, REFUSED (with the code
   and a message naming the row and the column) when they are not. When the
   performer signs the consent text for the batch, the signature is checked
   here and a copy is kept on each row (``data["consent"]``) so the consent
   each recording gets says exactly what was signed, when and from where.

2. ``import_row_attach_file`` imports one row's file, in one transaction:
   the recording, its provenance, its emotional signature and, when the batch
   was signed, its consent record. If any step fails the whole row rolls
   back, the stored media is deleted, and the row is REFUSED with the reason.
   A file this performer already uploaded marks the row ALREADY_IMPORTED,
   linked to the existing recording: running the same import twice creates
   nothing twice.

The documented manifest format is docs/manifest.md; ``COLUMNS`` below is the
single source of truth for it (the web page's column reference and the
template CSV are generated from it).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import IO, Any

from django.core.files import File
from django.db import transaction
from django.db.models import Count, QuerySet
from django.http import Http404, HttpRequest
from django.utils import timezone

from accounts.models import PerformerProfile, User
from core.errors import ApplicationError, Conflict, NotFound, PermissionDenied, ValidationError
from core.services import audit_record, client_ip
from marketplace.models import ImportBatch, ImportRow, Recording
from marketplace.taxonomy import Annotator, Authenticity, Emotion, SensitiveContent, Use, VocalEvent

logger = logging.getLogger(__name__)

MANIFEST_MAX_ROWS = 1000
MANIFEST_MAX_BYTES = 4 * 1024 * 1024  # 1,000 rows with long descriptions fit easily.
MAX_TEXT = {"title": 200, "session_name": 200, "studio": 200, "annotator": 200}
MAX_DESCRIPTION = 2000
MAX_TAGS = 30


# --- The manifest format ---------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    name: str
    required: bool
    meaning: str
    example: str


COLUMNS: tuple[Column, ...] = (
    Column("file_name", True, "The file's name in the upload, without folders.", "take-01.wav"),
    Column("title", True, "The recording's title, up to 200 characters.", "Bad news, take 1"),
    Column(
        "recording_date",
        True,
        "The day it was recorded, YYYY-MM-DD, not in the future.",
        "2026-10-14",
    ),
    Column(
        "primary_emotion",
        True,
        "One emotion of the taxonomy, by code or label (any case).",
        "grief",
    ),
    Column("intensity", True, "A whole number from 1 (faint) to 5 (overwhelming).", "4"),
    Column(
        "authenticity", True, "genuine, suppressed, forced, masked or exaggerated.", "suppressed"
    ),
    Column(
        "consent_uses",
        True,
        "The uses you consent to, separated by semicolons.",
        "model_training;evaluation",
    ),
    Column("language", False, "BCP 47 tag of the spoken language, e.g. en, es-MX.", "en"),
    Column(
        "valence",
        False,
        "−1 (unpleasant) to 1 (pleasant). Empty: the emotion's usual value.",
        "-0.7",
    ),
    Column(
        "arousal",
        False,
        "0 (still) to 1 (agitated). Empty: the emotion's usual value, adjusted by intensity.",
        "",
    ),
    Column("session_name", False, "The session or gig the take comes from.", "Hospital drama"),
    Column("studio", False, "Studio or location.", "Studio B, Leeds"),
    Column("annotator", False, "Who described the take, if not you (a name).", ""),
    Column(
        "annotated_by",
        False,
        "self, expert or automatic: who set the emotion values. Empty: self.",
        "self",
    ),
    Column("tags", False, "Keywords separated by semicolons (up to 30).", "hospital;held back"),
    Column("description", False, "A short description, up to 2,000 characters.", ""),
    Column(
        "vocal_events",
        False,
        "laugh, sigh, gasp, sob, tremor, scream, separated by semicolons.",
        "sigh;tremor",
    ),
    Column(
        "sensitive_content",
        False,
        "Sensitive content the take holds, separated by semicolons.",
        "grief",
    ),
    Column(
        "sensitive_content_licensable",
        False,
        "yes or no: whether you agree to license that sensitive content. Empty: no.",
        "yes",
    ),
)
COLUMN_NAMES = tuple(c.name for c in COLUMNS)
REQUIRED_COLUMNS = tuple(c.name for c in COLUMNS if c.required)

# Usual valence (−1..1) and arousal (0..1) of each emotion, on the circumplex
# model. Used when a row leaves valence or arousal empty; arousal then moves
# by 0.1 per intensity step away from 3. The performer can refine both on the
# recording's page.
EMOTION_DEFAULTS: dict[str, tuple[float, float]] = {
    Emotion.NEUTRAL: (0.0, 0.2),
    Emotion.CALM: (0.4, 0.1),
    Emotion.JOY: (0.8, 0.6),
    Emotion.AMUSEMENT: (0.7, 0.6),
    Emotion.SADNESS: (-0.6, 0.3),
    Emotion.GRIEF: (-0.8, 0.5),
    Emotion.ANGER: (-0.6, 0.8),
    Emotion.FRUSTRATION: (-0.5, 0.6),
    Emotion.FEAR: (-0.7, 0.8),
    Emotion.ANXIETY: (-0.5, 0.7),
    Emotion.DISGUST: (-0.6, 0.5),
    Emotion.CONTEMPT: (-0.5, 0.4),
    Emotion.SURPRISE: (0.2, 0.8),
    Emotion.SHAME: (-0.6, 0.4),
    Emotion.GUILT: (-0.5, 0.4),
    Emotion.EMBARRASSMENT: (-0.4, 0.5),
    Emotion.PRIDE: (0.6, 0.5),
    Emotion.RELIEF: (0.5, 0.3),
    Emotion.TENDERNESS: (0.6, 0.3),
    Emotion.CONFUSION: (-0.1, 0.5),
}


def default_valence_arousal(emotion: str, intensity: int) -> tuple[float, float]:
    valence, arousal = EMOTION_DEFAULTS[emotion]
    arousal = min(1.0, max(0.0, arousal + 0.1 * (intensity - 3)))
    return valence, round(arousal, 2)


def manifest_template_csv() -> str:
    """A template manifest: the header and two example rows."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMN_NAMES)
    writer.writerow(c.example for c in COLUMNS)
    second = {
        "file_name": "take-02.wav",
        "title": "Bad news, take 2",
        "recording_date": "2026-10-14",
        "primary_emotion": "Anger",
        "intensity": "5",
        "authenticity": "genuine",
        "consent_uses": "research_only",
        "language": "en-GB",
        "valence": "",
        "arousal": "0.9",
        "session_name": "Hospital drama",
        "studio": "Studio B, Leeds",
        "annotator": "",
        "annotated_by": "",
        "tags": "shouting",
        "description": "The second take, louder.",
        "vocal_events": "scream",
        "sensitive_content": "rage",
        "sensitive_content_licensable": "no",
    }
    writer.writerow(second[name] for name in COLUMN_NAMES)
    return out.getvalue()


# --- Parsing ------------------------------------------------------------------------------


@dataclass
class RowError:
    column: str
    code: str
    message: str


@dataclass
class ManifestRow:
    number: int  # 1 = the first line after the header
    file_name: str
    raw: dict[str, str]
    values: dict[str, Any] | None = None
    errors: list[RowError] = field(default_factory=list)

    def message(self) -> str:
        return "; ".join(f"row {self.number}, {e.column}: {e.message}" for e in self.errors)


def _norm(value: str) -> str:
    return re.sub(r"[\s_\-]+", " ", value.strip().casefold())


def _choice_lookup(choices: type) -> dict[str, str]:
    lookup: dict[str, str] = {}
    for code, label in choices.choices:
        lookup[_norm(code)] = code
        lookup[_norm(str(label))] = code
    return lookup


_EMOTIONS = _choice_lookup(Emotion)
_AUTHENTICITY = _choice_lookup(Authenticity)
_USES = _choice_lookup(Use)
_SENSITIVE = _choice_lookup(SensitiveContent)
_VOCAL = _choice_lookup(VocalEvent)
_ANNOTATORS = _choice_lookup(Annotator) | {_norm("performer"): Annotator.SELF}
_YES = {"yes", "y", "true", "1"}
_NO = {"no", "n", "false", "0", ""}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# BCP 47, the parts people use: language, optional script, optional region,
# optional variants (e.g. en, es-MX, zh-Hant-TW, sr-Latn, de-CH-1996).
_BCP47 = re.compile(
    r"^(?P<lang>[A-Za-z]{2,3})(?:-(?P<script>[A-Za-z]{4}))?(?:-(?P<region>[A-Za-z]{2}|\d{3}))?"
    r"(?P<variants>(?:-(?:[A-Za-z0-9]{5,8}|\d[A-Za-z0-9]{3}))*)$"
)


def _normalize_header(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationError(
            f"The manifest is not UTF-8 text (byte 0x{data[exc.start]:02X} at position "
            f"{exc.start} cannot be read). Save it as “CSV UTF-8” and upload it again.",
            code="manifest_encoding",
            details={"fields": {"manifest": ["The manifest must be UTF-8 text."]}},
        ) from None


def _manifest_error(message: str, code: str, **details: Any) -> ValidationError:
    return ValidationError(
        message, code=code, details={"fields": {"manifest": [message]}, **details}
    )


def manifest_parse(data: bytes) -> list[ManifestRow]:
    """Check the header and every row. Raises ValidationError for problems
    with the manifest as a whole (columns, encoding, size); problems with a
    row are kept on that row."""
    if len(data) > MANIFEST_MAX_BYTES:
        raise _manifest_error(
            f"The manifest is larger than {MANIFEST_MAX_BYTES // (1024 * 1024)} MB.",
            "manifest_too_large",
        )
    text = _decode(data)
    if "\x00" in text:
        raise _manifest_error(
            "The manifest is not a CSV text file (it holds binary data). Save a spreadsheet "
            "as “CSV UTF-8” and upload that.",
            "manifest_malformed",
        )
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        while header is not None and not any(cell.strip() for cell in header):
            header = next(reader, None)
        if header is None:
            raise _manifest_error(
                "The manifest is empty: it needs a header row and at least one row.",
                "manifest_empty",
            )
        columns = [_normalize_header(c) for c in header]
        _check_columns(columns)
        records = []
        filled = 0
        for record in reader:
            records.append(record)
            if any(cell.strip() for cell in record):
                filled += 1
                if filled > MANIFEST_MAX_ROWS:
                    raise _manifest_error(
                        f"The manifest has more than {MANIFEST_MAX_ROWS:,} rows. Split the "
                        "session into several manifests.",
                        "manifest_too_many_rows",
                    )
    except csv.Error as exc:
        raise _manifest_error(
            f"The manifest is not valid CSV (line {reader.line_num}: {exc}).",
            "manifest_malformed",
        ) from None
    if filled == 0:
        raise _manifest_error("The manifest has a header but no rows.", "manifest_empty")

    rows: list[ManifestRow] = []
    seen_files: dict[str, int] = {}
    for number, record in enumerate(records, start=1):
        if not any(cell.strip() for cell in record):
            continue  # blank lines are skipped but keep the numbering
        cells = [*record, *[""] * (len(columns) - len(record))]
        raw = {name: cells[i].strip() for i, name in enumerate(columns)}
        row = ManifestRow(number=number, file_name=raw.get("file_name", "")[:255], raw=raw)
        if len(record) > len(columns) and any(c.strip() for c in record[len(columns) :]):
            row.errors.append(
                RowError(
                    "file_name" if not raw["file_name"] else _last_column(columns),
                    "row_malformed",
                    f"has {len(record)} cells but the header has {len(columns)} columns "
                    "(is a comma missing its quotes?)",
                )
            )
        else:
            row.values = _clean_row(raw, row.errors)
        key = row.file_name.casefold()
        if key and key in seen_files:
            row.errors.append(
                RowError(
                    "file_name",
                    "duplicate_file_name",
                    f"“{row.file_name}” is already named in row {seen_files[key]}",
                )
            )
        elif key:
            seen_files[key] = number
        if row.errors:
            row.values = None
        rows.append(row)
    return rows


def _last_column(columns: list[str]) -> str:
    return columns[-1] if columns else "file_name"


def _check_columns(columns: list[str]) -> None:
    duplicated = sorted({c for c in columns if c and columns.count(c) > 1})
    unknown = [c or "(empty)" for c in columns if c not in COLUMN_NAMES]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if not (duplicated or unknown or missing):
        return
    parts = []
    if unknown:
        parts.append("unknown column(s): " + ", ".join(unknown))
    if missing:
        parts.append("missing required column(s): " + ", ".join(missing))
    if duplicated:
        parts.append("column(s) named twice: " + ", ".join(duplicated))
    raise ValidationError(
        "The manifest's columns are wrong — "
        + "; ".join(parts)
        + ". Nothing was imported. The columns are: "
        + ", ".join(COLUMN_NAMES)
        + ".",
        code="manifest_columns",
        details={
            "unknown": unknown,
            "missing": missing,
            "duplicated": duplicated,
            "fields": {"manifest": ["; ".join(parts)]},
        },
    )


def _split(cell: str) -> list[str]:
    return [part.strip() for part in cell.split(";") if part.strip()]


def _choices(
    cell: str, lookup: dict[str, str], column: str, code: str, errors: list[RowError], what: str
) -> list[str]:
    values: list[str] = []
    unknown: list[str] = []
    for part in _split(cell):
        value = lookup.get(_norm(part))
        if value is None:
            unknown.append(part)
        elif value not in values:
            values.append(value)
    if unknown:
        hint = " (separate values with semicolons)" if any("," in u for u in unknown) else ""
        allowed = ", ".join(sorted(set(lookup.values())))
        errors.append(
            RowError(
                column,
                code,
                f"unknown {what} {', '.join(f'“{u}”' for u in unknown)}{hint}; use {allowed}",
            )
        )
    return values


def _clean_row(raw: dict[str, str], errors: list[RowError]) -> dict[str, Any]:
    """Turn one row's cells into the values the services take. Every problem
    is appended to ``errors`` (all of them, not only the first)."""

    def required(column: str) -> str:
        value = raw.get(column, "")
        if not value:
            errors.append(RowError(column, "required", "is required"))
        return value

    values: dict[str, Any] = {}

    file_name = required("file_name")
    if file_name and ("/" in file_name or "\\" in file_name or file_name in {".", ".."}):
        errors.append(
            RowError("file_name", "invalid_file_name", "must be a file name without folders")
        )
    elif len(file_name) > 255:
        errors.append(RowError("file_name", "too_long", "must be at most 255 characters"))
    values["file_name"] = file_name

    title = " ".join(required("title").split())
    values["title"] = title
    for column, limit in MAX_TEXT.items():
        text = " ".join(raw.get(column, "").split())
        if len(text) > limit:
            errors.append(RowError(column, "too_long", f"must be at most {limit} characters"))
        values[column] = text

    when = required("recording_date")
    values["recording_date"] = None
    if when:
        try:
            if not _DATE.match(when):
                raise ValueError
            day = date.fromisoformat(when)
        except ValueError:
            errors.append(
                RowError(
                    "recording_date",
                    "invalid_date",
                    f"“{when}” is not a date written YYYY-MM-DD (e.g. 2026-10-14)",
                )
            )
        else:
            if day > timezone.localdate():
                errors.append(
                    RowError("recording_date", "date_in_future", f"{when} is in the future")
                )
            values["recording_date"] = day.isoformat()

    emotion_cell = required("primary_emotion")
    emotion = _EMOTIONS.get(_norm(emotion_cell)) if emotion_cell else None
    if emotion_cell and emotion is None:
        errors.append(
            RowError(
                "primary_emotion",
                "unknown_emotion",
                f"unknown emotion “{emotion_cell}”; use one of " + ", ".join(Emotion.values),
            )
        )
    values["primary_emotion"] = emotion

    intensity_cell = required("intensity")
    intensity = None
    if intensity_cell:
        try:
            intensity = int(intensity_cell)
        except ValueError:
            errors.append(
                RowError(
                    "intensity", "not_a_number", f"“{intensity_cell}” is not a whole number 1 to 5"
                )
            )
        else:
            if not 1 <= intensity <= 5:
                errors.append(
                    RowError("intensity", "out_of_range", f"must be 1 to 5 (found {intensity})")
                )
                intensity = None
    values["intensity"] = intensity

    authenticity_cell = required("authenticity")
    authenticity = _AUTHENTICITY.get(_norm(authenticity_cell)) if authenticity_cell else None
    if authenticity_cell and authenticity is None:
        errors.append(
            RowError(
                "authenticity",
                "unknown_choice",
                f"unknown authenticity “{authenticity_cell}”; use one of "
                + ", ".join(Authenticity.values),
            )
        )
    values["authenticity"] = authenticity

    uses_cell = required("consent_uses")
    uses = _choices(uses_cell, _USES, "consent_uses", "unknown_use", errors, "use")
    if Use.RESEARCH_ONLY in uses and len(uses) > 1:
        errors.append(
            RowError(
                "consent_uses",
                "conflicting_uses",
                "research_only cannot be combined with other uses",
            )
        )
    values["consent_uses"] = uses

    language = raw.get("language", "")
    if language:
        match = _BCP47.match(language.replace("_", "-"))
        if match is None:
            errors.append(
                RowError(
                    "language",
                    "invalid_language",
                    f"“{language}” is not a BCP 47 language tag (e.g. en, es-MX, zh-Hant-TW)",
                )
            )
        else:
            language = match["lang"].lower()
            if match["script"]:
                language += "-" + match["script"].title()
            if match["region"]:
                language += "-" + match["region"].upper()
            language += match["variants"].lower()
    values["language"] = language

    for column, low, high in (("valence", -1.0, 1.0), ("arousal", 0.0, 1.0)):
        cell = raw.get(column, "").replace("−", "-").replace(",", ".")
        values[column] = None
        if not cell:
            continue
        try:
            number = float(cell)
            if number != number:  # NaN
                raise ValueError
        except ValueError:
            errors.append(RowError(column, "not_a_number", f"“{cell}” is not a number"))
            continue
        if not low <= number <= high:
            errors.append(RowError(column, "out_of_range", f"must be between {low:g} and {high:g}"))
            continue
        values[column] = number
    if emotion and intensity:
        default_valence, default_arousal = default_valence_arousal(emotion, intensity)
        values["valence_derived"] = values["valence"] is None
        values["arousal_derived"] = values["arousal"] is None
        if values["valence"] is None:
            values["valence"] = default_valence
        if values["arousal"] is None:
            values["arousal"] = default_arousal

    annotated_by_cell = raw.get("annotated_by", "")
    annotated_by = _ANNOTATORS.get(_norm(annotated_by_cell)) if annotated_by_cell else "self"
    if annotated_by is None:
        errors.append(
            RowError(
                "annotated_by",
                "unknown_choice",
                f"unknown annotator kind “{annotated_by_cell}”; use self, expert or automatic",
            )
        )
    values["annotated_by"] = annotated_by

    tags = []
    for tag in _split(raw.get("tags", "")):
        tag = " ".join(tag.split()).lower()
        if len(tag) > 40:
            errors.append(RowError("tags", "too_long", f"“{tag}” is longer than 40 characters"))
        elif tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        errors.append(RowError("tags", "too_many", f"at most {MAX_TAGS} tags"))
    values["tags"] = tags

    description = raw.get("description", "").strip()
    if len(description) > MAX_DESCRIPTION:
        errors.append(
            RowError("description", "too_long", f"must be at most {MAX_DESCRIPTION:,} characters")
        )
    values["description"] = description

    values["vocal_events"] = _choices(
        raw.get("vocal_events", ""), _VOCAL, "vocal_events", "unknown_choice", errors, "event"
    )
    values["sensitive_content"] = _choices(
        raw.get("sensitive_content", ""),
        _SENSITIVE,
        "sensitive_content",
        "unknown_choice",
        errors,
        "sensitive content",
    )
    licensable = raw.get("sensitive_content_licensable", "").strip().casefold()
    if licensable not in _YES | _NO:
        errors.append(
            RowError(
                "sensitive_content_licensable", "invalid_yes_no", f"“{licensable}” is not yes or no"
            )
        )
    values["sensitive_content_licensable"] = licensable in _YES
    return values


# --- Starting a batch -------------------------------------------------------------------


def _read_upload(manifest_file: IO[bytes] | File) -> bytes:
    if hasattr(manifest_file, "seek"):
        with contextlib.suppress(OSError, ValueError):
            manifest_file.seek(0)
    data = manifest_file.read(MANIFEST_MAX_BYTES + 1)
    if isinstance(data, str):  # a text-mode file handed in by mistake
        data = data.encode()
    return data


def _batch_consent(
    *,
    performer: PerformerProfile,
    signature_name: str,
    consent_text_version: str,
    request: HttpRequest | None,
    ip_address: str | None,
    user_agent: str,
) -> dict[str, Any]:
    """Check the batch signature the same way ``consent_give`` will for each
    row, so a typo is reported before any file is uploaded."""
    from marketplace.services import consent_text_current

    text = consent_text_current()
    if (consent_text_version or "").strip() != text.version:
        message = (
            f"The consent text is now version {text.version}"
            + (f", not {consent_text_version}" if consent_text_version else "")
            + ". Read the current text and sign again."
        )
        raise ValidationError(
            f"consent_text_version: {message}",
            code="consent_text_outdated",
            details={"fields": {"consent_text_version": [message]}, "current": text.version},
        )
    signature = " ".join(signature_name.split())
    legal_name = " ".join(performer.legal_name.split())
    if not signature:
        message = "Type your full legal name to sign."
        raise ValidationError(
            f"signature_name: {message}",
            code="validation_error",
            details={"fields": {"signature_name": [message]}},
        )
    if signature.casefold() != legal_name.casefold():
        message = f"The signature must be your full legal name as in your profile ({legal_name})."
        raise ValidationError(
            f"signature_name: {message}",
            code="signature_mismatch",
            details={"fields": {"signature_name": [message]}},
        )
    return {
        "signature_name": signature,
        "version": text.version,
        "sha256": text.sha256,
        "signed_at": timezone.now().isoformat(),
        "ip_address": ip_address or client_ip(request),
        "user_agent": (
            user_agent or (request.headers.get("User-Agent", "") if request is not None else "")
        )[:400],
    }


def import_batch_start(
    *,
    performer: PerformerProfile,
    by: User,
    manifest_file: IO[bytes] | File,
    manifest_name: str,
    source: str,
    signature_name: str = "",
    consent_text_version: str = "",
    request: HttpRequest | None = None,
    ip_address: str | None = None,
    user_agent: str = "",
) -> ImportBatch:
    """Validate the manifest and create the batch with one row per manifest
    row. With ``signature_name`` the performer signs the current consent text
    (``consent_text_version`` must name it) for every recording of the batch;
    without it, recordings are imported without consent."""
    if performer.user_id != by.pk:
        raise PermissionDenied("You can only import recordings as yourself.")
    if source not in ImportBatch.Source.values:
        raise ValidationError(f"source: unknown source “{source}”.", code="unknown_choice")
    data = _read_upload(manifest_file)
    parsed = manifest_parse(data)
    consent = None
    if signature_name.strip() or consent_text_version.strip():
        consent = _batch_consent(
            performer=performer,
            signature_name=signature_name,
            consent_text_version=consent_text_version,
            request=request,
            ip_address=ip_address,
            user_agent=user_agent,
        )

    with transaction.atomic():
        batch = ImportBatch.objects.create(
            performer=performer,
            created_by=by,
            source=source,
            manifest_name=(manifest_name or "manifest.csv")[:255],
            manifest_sha256=hashlib.sha256(data).hexdigest(),
        )
        rows = []
        for parsed_row in parsed:
            row_data: dict[str, Any] = {"raw": parsed_row.raw}
            if parsed_row.errors:
                row_data["errors"] = [e.__dict__ for e in parsed_row.errors]
            else:
                row_data["values"] = parsed_row.values
                if consent is not None:
                    row_data["consent"] = consent
            rows.append(
                ImportRow(
                    batch=batch,
                    row_number=parsed_row.number,
                    file_name=parsed_row.file_name,
                    data=row_data,
                    status=ImportRow.Status.REFUSED
                    if parsed_row.errors
                    else ImportRow.Status.PENDING,
                    error_code=parsed_row.errors[0].code if parsed_row.errors else "",
                    message=parsed_row.message(),
                )
            )
        ImportRow.objects.bulk_create(rows)
        refused = sum(1 for r in rows if r.status == ImportRow.Status.REFUSED)
        audit_record(
            action="import.started",
            actor=by,
            target=batch,
            request=request,
            data={
                "source": source,
                "manifest": batch.manifest_name,
                "manifest_sha256": batch.manifest_sha256,
                "rows": len(rows),
                "refused": refused,
                "consent": (
                    {k: consent[k] for k in ("signature_name", "version", "ip_address")}
                    if consent
                    else None
                ),
            },
        )
        if refused == len(rows):
            _batch_finish(batch, by=by, request=request)
    return batch


# --- Importing one row --------------------------------------------------------------------

_DONE = {ImportRow.Status.IMPORTED, ImportRow.Status.ALREADY_IMPORTED}

# Service field names → the manifest column a person should fix.
_FIELD_TO_COLUMN = {
    "file": "file_name",
    "original_filename": "file_name",
    "allowed_uses": "consent_uses",
    "annotator": "annotated_by",
    "primary_emotion": "primary_emotion",
}


def row_accepts_file(row: ImportRow) -> bool:
    """A row takes a file while it waits for one, and again after its file
    was refused (so a corrected file can be uploaded); a row whose manifest
    values were refused needs a corrected manifest instead."""
    return "values" in row.data and row.status in (
        ImportRow.Status.PENDING,
        ImportRow.Status.REFUSED,
    )


def _error_column_and_text(exc: ApplicationError) -> tuple[str, str]:
    fields = exc.details.get("fields") if isinstance(exc.details, dict) else None
    if isinstance(fields, dict) and fields:
        name, messages = next(iter(fields.items()))
        text = messages[0] if isinstance(messages, list) and messages else str(messages)
        return _FIELD_TO_COLUMN.get(name, name), str(text)
    return "file_name", exc.message


def _discard_media(recording: Recording | None) -> None:
    """The database rolled back, but files written to storage do not: delete
    the ones the failed row stored, so nothing of it is left behind."""
    if recording is None:
        return
    for field_file in (recording.file, recording.preview):
        name = getattr(field_file, "name", "")
        if name:
            try:
                field_file.storage.delete(name)
            except Exception:  # cleanup must not hide the row's real error
                logger.warning("Could not delete %s after a failed import row", name, exc_info=True)


def import_row_for_file(*, batch: ImportBatch, file_name: str) -> ImportRow:
    """The row a file belongs to, by its name: exact first, then ignoring
    case (the manifest refuses names that differ only by case)."""
    name = file_name.replace("\\", "/").rsplit("/", 1)[-1]
    row = batch.rows.filter(file_name=name).first()
    if row is None:
        candidates = [r for r in batch.rows.filter(file_name__iexact=name)]
        row = candidates[0] if len(candidates) == 1 else None
    if row is None:
        raise NotFound(
            f"“{name}” is not named in this batch's manifest.",
            code="file_not_in_manifest",
            details={"file_name": name},
        )
    return row


def import_row_attach_file(
    *, row: ImportRow, file: File, by: User, request: HttpRequest | None = None
) -> ImportRow:
    """Import one row's file: recording, provenance, signature and consent in
    one transaction. The row ends IMPORTED, ALREADY_IMPORTED or REFUSED with
    the reason; only a row that takes no file (see ``row_accepts_file``)
    raises. A row already imported is returned as it is."""
    from marketplace import services as catalogue
    from marketplace.services.recordings import recording_create

    batch = ImportBatch.objects.select_related("performer").get(pk=row.batch_id)
    performer = batch.performer
    if performer.user_id != by.pk:
        raise NotFound("No such import.")
    if "values" not in row.data:
        raise Conflict(
            row.message or f"row {row.row_number} was refused.",
            code="row_refused",
            details={"row": row.row_number},
        )
    values = row.data["values"]
    consent = row.data.get("consent")
    created: Recording | None = None
    try:
        with transaction.atomic():
            locked = ImportRow.objects.select_for_update().get(pk=row.pk)
            if locked.status in _DONE:
                return locked
            created = recording_create(
                performer=performer,
                by=by,
                file=file,
                original_filename=locked.file_name,
                title=values["title"],
                language=values["language"],
                # Provenance is recorded with the recording, in the same
                # transaction; performer name and contact come from the profile.
                provenance={
                    "recording_date": date.fromisoformat(values["recording_date"]),
                    "session_name": values["session_name"],
                    "studio": values["studio"],
                    "annotator": values["annotator"],
                },
                request=request,
            )
            catalogue.signature_save(
                recording=created,
                by=by,
                primary_emotion=values["primary_emotion"],
                intensity=values["intensity"],
                valence=values["valence"],
                arousal=values["arousal"],
                authenticity=values["authenticity"],
                vocal_events=values["vocal_events"],
                annotator=values["annotated_by"],
                description=values["description"],
                tags=values["tags"],
                request=request,
            )
            if consent is not None:
                catalogue.consent_give(
                    recording=created,
                    by=by,
                    allowed_uses=values["consent_uses"],
                    sensitive_content=values["sensitive_content"],
                    sensitive_content_licensable=values["sensitive_content_licensable"],
                    signature_name=consent["signature_name"],
                    consent_text_version=consent["version"],
                    request=request,
                    ip_address=consent.get("ip_address"),
                    user_agent=consent.get("user_agent", ""),
                )
                message = f"Imported as {created.uid} with consent."
            else:
                message = (
                    f"Imported as {created.uid}. Consent is still needed: give it on the "
                    "recording's page."
                )
            locked.status = ImportRow.Status.IMPORTED
            locked.recording = created
            locked.error_code = ""
            locked.message = message
            locked.save(
                update_fields=["status", "recording", "error_code", "message", "updated_at"]
            )
            audit_record(
                action="import.row_imported",
                actor=by,
                target=batch,
                request=request,
                data={"row": locked.row_number, "recording": created.uid},
            )
    except Conflict as exc:
        _discard_media(created)
        if exc.code != "duplicate_recording":
            return _row_refuse(row, exc, by=by, request=request)
        return _row_already_imported(row, exc, by=by, request=request)
    except ApplicationError as exc:
        _discard_media(created)
        return _row_refuse(row, exc, by=by, request=request)
    except Exception:
        # A bug or an outage must not stop the rest of the batch; the row is
        # refused with a plain message and the error goes to the log.
        _discard_media(created)
        logger.exception("Import row %s of batch %s failed", row.row_number, batch.pk)
        return _row_refuse(
            row,
            ApplicationError(
                "the file could not be imported because of an unexpected error; try again",
                code="import_failed",
            ),
            by=by,
            request=request,
        )
    _batch_maybe_finish(batch, by=by, request=request)
    return locked


def _row_already_imported(
    row: ImportRow, exc: Conflict, *, by: User, request: HttpRequest | None
) -> ImportRow:
    from marketplace.services import consent_active

    uid = exc.details.get("recording", "")
    with transaction.atomic():
        locked = ImportRow.objects.select_for_update().select_related("batch").get(pk=row.pk)
        if locked.status in _DONE:
            return locked
        existing = Recording.objects.filter(uid=uid, performer_id=locked.batch.performer_id).first()
        message = f"This file was already imported as {uid}; nothing was added."
        if existing is not None and consent_active(existing) is None:
            message += " That recording still needs consent on its page."
        locked.status = ImportRow.Status.ALREADY_IMPORTED
        locked.recording = existing
        locked.error_code = ""
        locked.message = message
        locked.save(update_fields=["status", "recording", "error_code", "message", "updated_at"])
    _batch_maybe_finish(locked.batch, by=by, request=request)
    return locked


def _row_refuse(
    row: ImportRow, exc: ApplicationError, *, by: User | None, request: HttpRequest | None
) -> ImportRow:
    column, text = _error_column_and_text(exc)
    return import_row_refuse(
        row=row,
        code=exc.code,
        message=f"row {row.row_number}, {column}: {text}",
        by=by,
        request=request,
    )


def import_row_refuse(
    *,
    row: ImportRow,
    code: str,
    message: str,
    by: User | None,
    request: HttpRequest | None = None,
) -> ImportRow:
    """Mark a row refused for a reason found outside the manifest (its file
    is missing, corrupt, not media …). A refused row may be given a
    corrected file later."""
    with transaction.atomic():
        locked = ImportRow.objects.select_for_update().select_related("batch").get(pk=row.pk)
        if locked.status in _DONE:
            return locked
        locked.status = ImportRow.Status.REFUSED
        locked.recording = None
        locked.error_code = code[:60]
        locked.message = message
        locked.save(update_fields=["status", "recording", "error_code", "message", "updated_at"])
        audit_record(
            action="import.row_refused",
            actor=by,
            target=locked.batch,
            request=request,
            data={"row": locked.row_number, "code": code},
        )
    _batch_maybe_finish(locked.batch, by=by, request=request)
    return locked


def _batch_maybe_finish(
    batch: ImportBatch, *, by: User | None, request: HttpRequest | None
) -> None:
    if not batch.rows.filter(status=ImportRow.Status.PENDING).exists():
        _batch_finish(batch, by=by, request=request)


def _batch_finish(batch: ImportBatch, *, by: User | None, request: HttpRequest | None) -> None:
    """Record, once, that every row of the batch has an outcome."""
    with transaction.atomic():
        now = timezone.now()
        if ImportBatch.objects.filter(pk=batch.pk, finished_at__isnull=True).update(
            finished_at=now
        ):
            batch.finished_at = now
            audit_record(
                action="import.finished",
                actor=by,
                target=batch,
                request=request,
                data=import_batch_counts(batch),
            )


# --- Reads --------------------------------------------------------------------------------


def import_batch_for_user(*, user: User, batch_id: int) -> ImportBatch:
    """The batch, for the performer who made it. Anyone else gets 404, staff
    included, so a batch's existence never leaks."""
    if not user.is_authenticated:
        raise Http404
    batch = (
        ImportBatch.objects.select_related("performer")
        .filter(pk=batch_id, performer__user=user)
        .first()
    )
    if batch is None:
        raise Http404("No such import.")
    return batch


def import_batches_for_performer(performer: PerformerProfile) -> QuerySet[ImportBatch]:
    return ImportBatch.objects.filter(performer=performer).annotate(row_count=Count("rows"))


def import_batch_counts(batch: ImportBatch) -> dict[str, int]:
    counts = {status: 0 for status in ImportRow.Status.values}
    for item in batch.rows.values("status").annotate(n=Count("id")).order_by():
        counts[item["status"]] = item["n"]
    counts["total"] = sum(counts[s] for s in ImportRow.Status.values)
    return counts


def import_rows(batch: ImportBatch) -> QuerySet[ImportRow]:
    return batch.rows.select_related("recording").order_by("row_number")


def files_without_rows(batch: ImportBatch, names: Iterable[str]) -> list[str]:
    """Which of these file names the manifest does not mention."""
    known = {name.casefold() for name in batch.rows.values_list("file_name", flat=True)}
    return sorted(n for n in names if n.casefold() not in known)
