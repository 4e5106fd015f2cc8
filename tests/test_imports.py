"""Batch import of a session's takes with a CSV manifest: the manifest format,
row-by-row outcomes through the real recording service, the command (exit
codes, output, progress bar), the web flow and who may see a batch."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from core.errors import ValidationError
from core.models import AuditEvent
from marketplace.models import (
    ConsentRecord,
    EmotionalSignature,
    ImportBatch,
    ImportRow,
    Provenance,
    Recording,
)
from marketplace.services import consent_text_current
from marketplace.services.imports import (
    COLUMN_NAMES,
    MANIFEST_MAX_ROWS,
    import_batch_start,
    import_row_attach_file,
    import_row_for_file,
    manifest_parse,
    manifest_template_csv,
)
from tests.factories import make_performer, make_user
from tests.factories_marketplace import wav_bytes

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()
YESTERDAY = (TODAY - timedelta(days=1)).isoformat()
TOMORROW = (TODAY + timedelta(days=1)).isoformat()

BASE_ROW = {
    "title": "Take",
    "recording_date": "2026-10-14",
    "primary_emotion": "grief",
    "intensity": "4",
    "authenticity": "suppressed",
    "consent_uses": "model_training;evaluation",
    "language": "en",
    "session_name": "Hospital drama",
    "studio": "Studio B",
    "annotator": "Ana Notes",
    "tags": "hospital;held back",
}


def row(name: str, **overrides) -> dict:
    return {"file_name": name, **BASE_ROW, "title": f"Take {name}", **overrides}


def manifest_bytes(rows: list[dict], columns: list[str] | None = None, *, bom: bool = False):
    columns = columns or list(dict.fromkeys(k for r in rows for k in r))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return (("\ufeff" if bom else "") + out.getvalue()).encode()


def tiny_wav(index: int, seconds: float = 0.1) -> bytes:
    """A real, distinct WAV per index (different tones are different files)."""
    return wav_bytes(seconds, rate=8000, freq=220.0 + 17 * index)


def write_session(tmp_path: Path, rows: list[dict], files: dict[str, bytes]) -> Path:
    folder = tmp_path / "session"
    folder.mkdir()
    (folder / "manifest.csv").write_bytes(manifest_bytes(rows))
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def run(folder: Path, email: str, **options) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    options.setdefault("no_progress", True)
    args = [str(folder)] if folder is not None else []
    try:
        call_command("import_recordings", *args, performer=email, stdout=out, stderr=err, **options)
    except CommandError as exc:
        return exc.returncode, out.getvalue(), err.getvalue() + str(exc)
    return 0, out.getvalue(), err.getvalue()


def signed(performer) -> dict:
    return {
        "sign_consent": performer.legal_name,
        "consent_version": consent_text_current().version,
    }


def stored_originals(settings) -> list[Path]:
    root = Path(settings.MEDIA_ROOT) / "recordings"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# --- The manifest format ------------------------------------------------------------------


def test_the_template_csv_is_a_valid_manifest():
    rows = manifest_parse(manifest_template_csv().encode())
    assert [r.errors for r in rows] == [[], []]
    assert rows[1].values["primary_emotion"] == "anger"  # a label, any case
    assert rows[0].values["consent_uses"] == ["model_training", "evaluation"]


def test_template_download_is_a_csv_with_every_column(client):
    response = client.get(reverse("recording_import_template"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    header = response.content.decode("utf-8-sig").splitlines()[0]
    assert header.split(",") == list(COLUMN_NAMES)


def test_labels_and_codes_are_accepted_in_any_case():
    data = manifest_bytes(
        [
            row(
                "a.wav",
                primary_emotion="TENDERNESS",
                authenticity="Masked",
                consent_uses="Model training; fine-tuning",
                language="es_mx",
                sensitive_content="Grief or bereavement",
                sensitive_content_licensable="Yes",
            )
        ]
    )
    (parsed,) = manifest_parse(data)
    assert parsed.errors == []
    values = parsed.values
    assert values["primary_emotion"] == "tenderness"
    assert values["authenticity"] == "masked"
    assert values["consent_uses"] == ["model_training", "fine_tuning"]
    assert values["language"] == "es-MX"
    assert values["sensitive_content"] == ["grief"]
    assert values["sensitive_content_licensable"] is True


def test_valence_and_arousal_default_from_the_emotion_and_intensity():
    (low, high, given) = manifest_parse(
        manifest_bytes(
            [
                row("a.wav", primary_emotion="anger", intensity="1"),
                row("b.wav", primary_emotion="anger", intensity="5"),
                row("c.wav", primary_emotion="anger", valence="−0.25", arousal="0.3"),
            ]
        )
    )
    assert low.values["valence"] == high.values["valence"] == -0.6
    assert low.values["arousal"] < high.values["arousal"] <= 1
    assert (given.values["valence"], given.values["arousal"]) == (-0.25, 0.3)


@pytest.mark.parametrize(
    "overrides, column, code, fragment",
    [
        ({"primary_emotion": "angry"}, "primary_emotion", "unknown_emotion", "“angry”"),
        ({"intensity": "7"}, "intensity", "out_of_range", "must be 1 to 5"),
        ({"intensity": "three"}, "intensity", "not_a_number", "“three”"),
        ({"recording_date": "14/10/2026"}, "recording_date", "invalid_date", "YYYY-MM-DD"),
        ({"recording_date": "2026-02-30"}, "recording_date", "invalid_date", "YYYY-MM-DD"),
        ({"recording_date": TOMORROW}, "recording_date", "date_in_future", "in the future"),
        ({"recording_date": ""}, "recording_date", "required", "is required"),
        ({"consent_uses": "model_training;cloning"}, "consent_uses", "unknown_use", "“cloning”"),
        (
            {"consent_uses": "model_training, evaluation"},
            "consent_uses",
            "unknown_use",
            "semicolon",
        ),
        ({"consent_uses": "research_only;evaluation"}, "consent_uses", "conflicting_uses", ""),
        ({"consent_uses": ""}, "consent_uses", "required", "is required"),
        ({"authenticity": "sincere"}, "authenticity", "unknown_choice", "“sincere”"),
        ({"language": "english"}, "language", "invalid_language", "BCP 47"),
        ({"valence": "2"}, "valence", "out_of_range", "between -1 and 1"),
        ({"arousal": "-0.1"}, "arousal", "out_of_range", "between 0 and 1"),
        ({"sensitive_content": "gore"}, "sensitive_content", "unknown_choice", "“gore”"),
        ({"sensitive_content_licensable": "maybe"}, "sensitive_content_licensable", "", ""),
        ({"title": ""}, "title", "required", "is required"),
        ({"file_name": "day1/take.wav"}, "file_name", "invalid_file_name", "without folders"),
    ],
)
def test_a_bad_value_refuses_its_row_naming_the_column(overrides, column, code, fragment):
    first, bad = manifest_parse(manifest_bytes([row("good.wav"), row("bad.wav", **overrides)]))
    assert first.errors == [] and first.values is not None
    assert bad.values is None
    error = bad.errors[0]
    assert error.column == column
    if code:
        assert error.code == code
    assert bad.message().startswith(f"row 2, {column}: ")
    assert fragment in bad.message()


def test_every_problem_of_a_row_is_reported():
    (parsed,) = manifest_parse(
        manifest_bytes([row("a.wav", primary_emotion="angry", intensity="9")])
    )
    assert [e.column for e in parsed.errors] == ["primary_emotion", "intensity"]
    assert parsed.message() == (
        "row 1, primary_emotion: "
        + parsed.errors[0].message
        + "; row 1, intensity: must be 1 to 5 (found 9)"
    )


def test_a_file_named_twice_refuses_the_second_row():
    rows = manifest_parse(
        manifest_bytes([row("take.wav"), row("other.wav"), row("TAKE.wav", title="again")])
    )
    assert [r.errors for r in rows[:2]] == [[], []]
    assert rows[2].errors[0].code == "duplicate_file_name"
    assert "row 1" in rows[2].message()


def test_blank_lines_are_skipped_and_rows_keep_their_spreadsheet_numbers():
    data = (
        manifest_bytes([row("a.wav")])
        + b",,,,,,,,,,,\r\n"
        + manifest_bytes([row("b.wav")]).split(b"\r\n", 1)[1]
    )
    rows = manifest_parse(data)
    assert [(r.number, r.file_name) for r in rows] == [(1, "a.wav"), (3, "b.wav")]


def test_a_byte_order_mark_and_header_case_are_accepted():
    data = manifest_bytes([row("a.wav")], bom=True)
    header, rest = data.split(b"\r\n", 1)
    data = header.replace(b"file_name", b"File Name").replace(b"title", b"TITLE") + b"\r\n" + rest
    (parsed,) = manifest_parse(data)
    assert parsed.errors == []
    assert parsed.values["title"] == "Take a.wav"


@pytest.mark.parametrize(
    "data, code, fragment",
    [
        ("file_name,title\nx,y\n".encode("latin-1"), "manifest_columns", "recording_date"),
        (b"", "manifest_empty", "empty"),
        (",".join(COLUMN_NAMES).encode() + b"\n", "manifest_empty", "no rows"),
        ("file_name,títle\n".encode("latin-1"), "manifest_encoding", "UTF-8"),
        (b"PK\x03\x04\x14\x00\x06\x00", "manifest_malformed", "binary"),  # a zip/xlsx
    ],
)
def test_manifests_refused_as_a_whole(data, code, fragment):
    with pytest.raises(ValidationError) as caught:
        manifest_parse(data)
    assert caught.value.code == code
    assert fragment in caught.value.message


def test_unknown_and_missing_columns_are_named():
    rows = [{k: v for k, v in row("a.wav", mood="sad").items() if k != "intensity"}]
    with pytest.raises(ValidationError) as caught:
        manifest_parse(manifest_bytes(rows))
    error = caught.value
    assert error.code == "manifest_columns"
    assert error.details["unknown"] == ["mood"]
    assert error.details["missing"] == ["intensity"]
    assert "unknown column(s): mood" in error.message
    assert "missing required column(s): intensity" in error.message


def test_more_than_1000_rows_is_refused_and_1000_is_fine():
    rows = [row(f"t{i}.wav") for i in range(MANIFEST_MAX_ROWS)]
    assert len(manifest_parse(manifest_bytes(rows))) == MANIFEST_MAX_ROWS
    with pytest.raises(ValidationError) as caught:
        manifest_parse(manifest_bytes([*rows, row("one-more.wav")]))
    assert caught.value.code == "manifest_too_many_rows"


def test_wrong_columns_refuse_the_whole_manifest_and_create_nothing(performer, tmp_path):
    folder = write_session(
        tmp_path,
        [row("a.wav", feeling="sad"), row("b.wav")],
        {"a.wav": tiny_wav(1), "b.wav": tiny_wav(2)},
    )
    events = AuditEvent.objects.count()
    code, _, err = run(folder, performer.user.email, **signed(performer))
    assert code == 2
    assert "manifest_columns" in err and "feeling" in err
    assert ImportBatch.objects.count() == 0
    assert ImportRow.objects.count() == 0
    assert Recording.objects.count() == 0
    assert AuditEvent.objects.count() == events


# --- Importing through the command ----------------------------------------------------------


def test_a_good_manifest_imports_every_row_with_provenance_signature_and_consent(
    performer, tmp_path, settings
):
    rows = [
        row("take-1.wav", primary_emotion="grief", intensity="4", valence="-0.8"),
        row(
            "take-2.wav",
            primary_emotion="Joy",
            intensity="2",
            authenticity="genuine",
            consent_uses="research_only",
            vocal_events="laugh",
            annotated_by="expert",
            description="Laughing at the end.",
        ),
        row(
            "take-3.wav",
            primary_emotion="anger",
            intensity="5",
            sensitive_content="rage",
            sensitive_content_licensable="yes",
            language="en-gb",
        ),
    ]
    files = {r["file_name"]: tiny_wav(i) for i, r in enumerate(rows)}
    folder = write_session(tmp_path, rows, files)

    code, out, err = run(folder, performer.user.email, **signed(performer))

    assert code == 0, out + err
    batch = ImportBatch.objects.get()
    assert batch.source == ImportBatch.Source.COMMAND
    assert batch.finished_at is not None
    assert [r.status for r in batch.rows.all()] == [ImportRow.Status.IMPORTED] * 3
    version = consent_text_current().version
    for imported in batch.rows.select_related("recording"):
        recording = imported.recording
        assert recording.performer == performer
        assert recording.original_filename == imported.file_name
        assert recording.title == f"Take {imported.file_name}"
        provenance = Provenance.objects.get(recording=recording)
        assert provenance.recording_date.isoformat() == "2026-10-14"
        assert provenance.session_name == "Hospital drama"
        assert provenance.studio == "Studio B"
        assert provenance.annotator == "Ana Notes"
        assert provenance.performer_name == performer.legal_name
        assert provenance.missing_fields() == []
        consent = ConsentRecord.objects.get(recording=recording)
        assert consent.signature_name == performer.legal_name
        assert consent.consent_text.version == version
        assert consent.signed_by == performer.user
        assert consent.user_agent == "manage.py import_recordings"
        assert imported.message.endswith("with consent.")
    one, two, three = (r.recording for r in batch.rows.select_related("recording"))
    assert one.signature.primary_emotion == "grief" and one.signature.valence == -0.8
    assert one.signature.tags == ["hospital", "held back"]
    assert two.signature.annotator == "expert"
    assert two.signature.vocal_events == ["laugh"]
    assert ConsentRecord.objects.get(recording=two).allowed_uses == ["research_only"]
    rage = ConsentRecord.objects.get(recording=three)
    assert rage.sensitive_content == ["rage"] and rage.sensitive_content_licensable
    assert three.language == "en-GB"
    assert len(stored_originals(settings)) == 3
    assert "3 row(s): 3 imported, 0 already imported, 0 refused" in out
    assert AuditEvent.objects.filter(action="import.started", target_id=str(batch.pk)).exists()
    assert AuditEvent.objects.filter(action="import.finished", target_id=str(batch.pk)).exists()


def test_bad_rows_are_refused_with_the_reason_and_good_rows_still_import(
    performer, tmp_path, settings
):
    truncated = tiny_wav(50, seconds=0.5)
    rows = [
        row("good-1.wav"),
        row("emotion.wav", primary_emotion="angry"),
        row("intensity.wav", intensity="7"),
        row("date.wav", recording_date="2026/10/14"),
        row("future.wav", recording_date=TOMORROW),
        row("use.wav", consent_uses="cloning"),
        row("missing.wav"),
        row("notes.wav"),
        row("corrupt.wav"),
        row("good-2.wav", recording_date=YESTERDAY),
    ]
    files = {
        "good-1.wav": tiny_wav(1),
        "good-2.wav": tiny_wav(2),
        "emotion.wav": tiny_wav(3),
        "intensity.wav": tiny_wav(4),
        "date.wav": tiny_wav(5),
        "future.wav": tiny_wav(6),
        "use.wav": tiny_wav(7),
        "notes.wav": b"These are my notes for the session, not audio.\n" * 40,
        "corrupt.wav": truncated[: len(truncated) // 2],
    }
    folder = write_session(tmp_path, rows, files)

    code, out, err = run(folder, performer.user.email, **signed(performer))

    assert code == 1
    assert "8 row(s) were refused" in err
    outcome = {r.file_name: r for r in ImportBatch.objects.get().rows.all()}
    expected = {
        "good-1.wav": ("imported", ""),
        "emotion.wav": ("refused", "unknown_emotion"),
        "intensity.wav": ("refused", "out_of_range"),
        "date.wav": ("refused", "invalid_date"),
        "future.wav": ("refused", "date_in_future"),
        "use.wav": ("refused", "unknown_use"),
        "missing.wav": ("refused", "file_missing"),
        "notes.wav": ("refused", "unsupported_media_type"),
        "corrupt.wav": ("refused", "corrupt_media"),
        "good-2.wav": ("imported", ""),
    }
    assert {name: (r.status, r.error_code) for name, r in outcome.items()} == expected
    assert outcome["intensity.wav"].message == "row 3, intensity: must be 1 to 5 (found 7)"
    assert outcome["missing.wav"].message.startswith("row 7, file_name: “missing.wav” is not in")
    assert outcome["notes.wav"].message.startswith("row 8, file_name: ")
    assert outcome["corrupt.wav"].message.startswith("row 9, file_name: ")
    # Only the good rows left anything behind.
    assert Recording.objects.count() == 2
    assert ConsentRecord.objects.count() == 2
    assert EmotionalSignature.objects.count() == 2
    assert len(stored_originals(settings)) == 2
    # The table names every row, its status and the reason.
    lines = out.splitlines()
    table_row = next(line for line in lines if "intensity.wav" in line)
    assert "refused" in table_row and "intensity: must be 1 to 5 (found 7)" in table_row
    assert "10 row(s): 2 imported, 0 already imported, 8 refused" in out


def test_running_the_same_import_again_adds_nothing(performer, tmp_path):
    rows = [row(f"take-{i}.wav") for i in range(3)] + [row("bad.wav", intensity="0")]
    folder = write_session(tmp_path, rows, {f"take-{i}.wav": tiny_wav(i) for i in range(3)})
    first_code, _, _ = run(folder, performer.user.email, **signed(performer))
    assert first_code == 1
    first = ImportBatch.objects.get()
    recordings = set(Recording.objects.values_list("uid", flat=True))
    consents = ConsentRecord.objects.count()

    code, out, _ = run(folder, performer.user.email, **signed(performer))

    second = ImportBatch.objects.exclude(pk=first.pk).get()
    statuses = {r.file_name: r.status for r in second.rows.all()}
    assert statuses == {
        "take-0.wav": "already_imported",
        "take-1.wav": "already_imported",
        "take-2.wav": "already_imported",
        "bad.wav": "refused",
    }
    assert set(Recording.objects.values_list("uid", flat=True)) == recordings
    assert ConsentRecord.objects.count() == consents
    linked = {r.recording.uid for r in second.rows.exclude(recording=None)}
    assert linked == recordings
    assert "already imported" in out
    assert code == 1  # the bad row is still bad

    # Without the bad row, a re-run is a success.
    (folder / "manifest.csv").write_bytes(manifest_bytes(rows[:3]))
    code, out, _ = run(folder, performer.user.email, **signed(performer))
    assert code == 0
    assert "3 row(s): 0 imported, 3 already imported, 0 refused" in out
    assert Recording.objects.count() == 3


def test_without_a_signature_rows_import_without_consent_and_the_report_says_so(
    performer, tmp_path
):
    folder = write_session(tmp_path, [row("a.wav")], {"a.wav": tiny_wav(1)})
    code, out, _ = run(folder, performer.user.email)
    assert code == 0
    recording = Recording.objects.get()
    assert not ConsentRecord.objects.filter(recording=recording).exists()
    assert "Consent is still needed" in out
    assert "No consent was signed for this batch" in out
    # Re-running later says the existing recording still needs consent.
    code, out, _ = run(folder, performer.user.email, **signed(performer))
    assert code == 0
    assert "still needs consent" in out


def test_a_row_whose_consent_fails_leaves_nothing_behind(performer, tmp_path, settings):
    """The signature matched when the batch started; the performer then
    changed their legal name, so consent_give refuses it after the recording
    was created: the whole row rolls back, stored file included."""
    folder = write_session(tmp_path, [row("a.wav")], {"a.wav": tiny_wav(1)})
    with (folder / "manifest.csv").open("rb") as manifest:
        batch = import_batch_start(
            performer=performer,
            by=performer.user,
            manifest_file=manifest,
            manifest_name="manifest.csv",
            source=ImportBatch.Source.COMMAND,
            signature_name=performer.legal_name,
            consent_text_version=consent_text_current().version,
        )
    performer.legal_name = "Someone Else Entirely"
    performer.save(update_fields=["legal_name"])
    pending = import_row_for_file(batch=batch, file_name="a.wav")
    from django.core.files import File

    with (folder / "a.wav").open("rb") as handle:
        result = import_row_attach_file(
            row=pending, file=File(handle, name=str(folder / "a.wav")), by=performer.user
        )

    assert result.status == ImportRow.Status.REFUSED
    assert result.error_code == "signature_mismatch"
    assert result.message.startswith("row 1, signature_name: ")
    assert Recording.objects.count() == 0
    assert Provenance.objects.count() == 0
    assert EmotionalSignature.objects.count() == 0
    assert stored_originals(settings) == []


def test_command_exit_codes_for_what_imports_nothing(performer, tmp_path):
    folder = write_session(tmp_path, [row("a.wav")], {"a.wav": tiny_wav(1)})
    version = consent_text_current().version

    code, _, err = run(folder, "nobody@example.com")
    assert code == 2 and "No performer has the email address nobody@example.com" in err

    buyer = make_user(email="buyer@example.com")
    code, _, err = run(folder, buyer.email)
    assert code == 2

    code, _, err = run(folder, performer.user.email, sign_consent=performer.legal_name)
    assert code == 2 and "--consent-version" in err and version in err

    code, _, err = run(
        folder, performer.user.email, sign_consent=performer.legal_name, consent_version="old"
    )
    assert code == 2 and "consent_text_outdated" in err

    code, _, err = run(
        folder, performer.user.email, sign_consent="Not My Name", consent_version=version
    )
    assert code == 2 and "signature_mismatch" in err and performer.legal_name in err

    code, _, err = run(tmp_path / "nowhere", performer.user.email)
    assert code == 2 and "is not a folder" in err

    code, _, err = run(folder, performer.user.email, manifest=str(tmp_path / "none.csv"))
    assert code == 2 and "There is no manifest" in err

    assert ImportBatch.objects.count() == 0
    assert Recording.objects.count() == 0


def test_the_performer_is_found_by_email_in_any_case(performer, tmp_path):
    folder = write_session(tmp_path, [row("a.wav")], {"a.wav": tiny_wav(1)})
    code, _, _ = run(folder, performer.user.email.upper())
    assert code == 0


def test_show_consent_prints_the_text_and_its_version():
    out = io.StringIO()
    call_command("import_recordings", show_consent=True, stdout=out)
    text = consent_text_current()
    assert text.version in out.getvalue()
    assert text.body.splitlines()[0] in out.getvalue()
    assert f"--consent-version {text.version}" in out.getvalue()


def test_the_command_draws_a_progress_bar_and_names_files_not_in_the_manifest(performer, tmp_path):
    folder = write_session(
        tmp_path, [row("a.wav"), row("b.wav")], {"a.wav": tiny_wav(1), "b.wav": tiny_wav(2)}
    )
    (folder / "stray.wav").write_bytes(tiny_wav(3))
    code, out, err = run(folder, performer.user.email, no_progress=False)
    assert code == 0
    assert "Importing" in err and "100%" in err and "2/2" in err
    assert "not in the manifest" in out and "stray.wav" in out


def test_a_batch_of_100_files_imports_through_the_command(performer, tmp_path):
    rows = [row(f"take-{i:03}.wav", intensity=str(i % 5 + 1)) for i in range(100)]
    files = {f"take-{i:03}.wav": tiny_wav(i, seconds=0.05) for i in range(100)}
    folder = write_session(tmp_path, rows, files)

    code, out, err = run(folder, performer.user.email, **signed(performer))

    assert code == 0, err
    assert Recording.objects.filter(performer=performer).count() == 100
    assert ConsentRecord.objects.count() == 100
    assert EmotionalSignature.objects.count() == 100
    assert "100 row(s): 100 imported, 0 already imported, 0 refused" in out


# --- The web flow ----------------------------------------------------------------------------


@pytest.fixture
def performer_client(client, performer):
    client.force_login(performer.user)
    return client


def start_web_batch(client, performer, rows, *, signature=None, version=None):
    return client.post(
        reverse("recording_import_new"),
        {
            "manifest": SimpleUploadedFile("session.csv", manifest_bytes(rows), "text/csv"),
            "signature_name": performer.legal_name if signature is None else signature,
            "consent_text_version": version or consent_text_current().version,
        },
    )


def upload_json(client, batch, name, data):
    response = client.post(
        reverse("recording_import_file", args=[batch.pk]),
        {"files": SimpleUploadedFile(name, data, "audio/wav")},
        HTTP_ACCEPT="application/json",
    )
    return response, response.json()


def test_web_flow_manifest_then_files_then_results(performer_client, performer, settings):
    page = performer_client.get(reverse("recording_import_new"))
    assert page.status_code == 200
    text = consent_text_current()
    assert text.version in page.content.decode()
    assert "By typing my full legal name below I sign this consent." in page.content.decode()

    rows = [row("take-1.wav"), row("take-2.wav"), row("take-3.wav", intensity="9")]
    response = start_web_batch(performer_client, performer, rows)
    batch = ImportBatch.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("recording_import_detail", args=[batch.pk])
    assert batch.source == ImportBatch.Source.WEB

    detail = performer_client.get(response["Location"])
    html = detail.content.decode()
    assert detail.status_code == 200
    assert "take-1.wav" in html and "must be 1 to 5 (found 9)" in html
    assert 'name="files" multiple' in html
    assert reverse("recording_import_file", args=[batch.pk]) in html
    assert "imports.js" in html and "imports.css" in html

    response, body = upload_json(performer_client, batch, "take-1.wav", tiny_wav(1))
    assert response.status_code == 200
    (result,) = body["results"]
    recording = Recording.objects.get()
    assert result["row"]["status"] == "imported"
    assert result["row"]["recording"] == {
        "uid": recording.uid,
        "url": f"/recordings/{recording.uid}/",
    }
    assert body["summary"]["imported"] == 1 and body["summary"]["pending"] == 1
    consent = ConsentRecord.objects.get(recording=recording)
    assert consent.ip_address == "127.0.0.1"
    assert consent.signature_name == performer.legal_name

    # The same file again, under the other row's name: already imported.
    response, body = upload_json(performer_client, batch, "take-2.wav", tiny_wav(1))
    assert body["results"][0]["row"]["status"] == "already_imported"
    assert body["results"][0]["row"]["recording"]["uid"] == recording.uid
    assert Recording.objects.count() == 1

    # A file the manifest does not name, and one whose row was refused.
    _, body = upload_json(performer_client, batch, "stray.wav", tiny_wav(2))
    assert body["results"][0]["error"]["code"] == "file_not_in_manifest"
    _, body = upload_json(performer_client, batch, "take-3.wav", tiny_wav(3))
    assert body["results"][0]["error"]["code"] == "row_refused"

    batch.refresh_from_db()
    assert batch.finished_at is not None
    results = performer_client.get(reverse("recording_import_detail", args=[batch.pk]))
    html = results.content.decode()
    assert f'href="/recordings/{recording.uid}/"' in html
    assert "Already imported" in html and "Refused" in html
    assert 'name="files" multiple' not in html  # nothing left to upload


def test_a_refused_file_can_be_replaced_by_a_good_one(performer_client, performer, settings):
    start_web_batch(performer_client, performer, [row("take.wav")])
    batch = ImportBatch.objects.get()
    _, body = upload_json(performer_client, batch, "take.wav", b"not audio at all" * 10)
    assert body["results"][0]["row"]["status"] == "refused"
    assert body["results"][0]["row"]["error_code"] == "unsupported_media_type"
    assert body["results"][0]["row"]["accepts_file"] is True
    assert stored_originals(settings) == []

    _, body = upload_json(performer_client, batch, "take.wav", tiny_wav(1))
    assert body["results"][0]["row"]["status"] == "imported"
    assert Recording.objects.count() == 1


def test_without_javascript_many_files_post_at_once(performer_client, performer):
    rows = [row(f"take-{i}.wav") for i in range(4)]
    start_web_batch(performer_client, performer, rows)
    batch = ImportBatch.objects.get()
    response = performer_client.post(
        reverse("recording_import_file", args=[batch.pk]),
        {
            "files": [
                SimpleUploadedFile(f"take-{i}.wav", tiny_wav(i), "audio/wav") for i in range(4)
            ]
        },
    )
    assert response.status_code == 302
    assert response["Location"].endswith("#results")
    assert [r.status for r in batch.rows.all()] == ["imported"] * 4
    page = performer_client.get(response["Location"])
    assert "4 files: 4 imported" in page.content.decode()


def test_the_web_form_names_what_is_wrong_and_creates_nothing(performer_client, performer):
    bad_columns = [{**row("a.wav"), "mood": "x"}]
    response = start_web_batch(performer_client, performer, bad_columns)
    assert response.status_code == 200
    assert "unknown column(s): mood" in response.content.decode()

    response = start_web_batch(performer_client, performer, [row("a.wav")], signature="Nope")
    assert response.status_code == 200
    assert "full legal name as in your profile" in response.content.decode()

    response = start_web_batch(performer_client, performer, [row("a.wav")], signature="")
    assert response.status_code == 200
    assert "This field is required" in response.content.decode()

    response = start_web_batch(performer_client, performer, [row("a.wav")], version="2020-v0")
    assert response.status_code == 200
    assert "The consent text is now version" in response.content.decode()

    assert ImportBatch.objects.count() == 0


def test_no_file_in_the_request_is_a_clear_error(performer_client, performer):
    start_web_batch(performer_client, performer, [row("a.wav")])
    batch = ImportBatch.objects.get()
    response = performer_client.post(
        reverse("recording_import_file", args=[batch.pk]), HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "no_file"


def test_a_file_over_the_size_limit_is_refused_while_it_uploads(
    performer_client, performer, settings
):
    settings.RECORDING_MAX_UPLOAD_BYTES = 1_000  # tiny_wav is ~1.6 kB
    start_web_batch(performer_client, performer, [row("big.wav")])
    batch = ImportBatch.objects.get()
    response, body = upload_json(performer_client, batch, "big.wav", tiny_wav(1))
    assert response.status_code == 413
    assert body["error"]["code"] == "file_too_large"
    assert Recording.objects.count() == 0
    assert batch.rows.get().status == ImportRow.Status.PENDING


def test_the_results_page_does_not_grow_in_queries_with_rows(performer_client, performer, tmp_path):
    def queries_for(count: int) -> int:
        folder = tmp_path / f"s{count}"
        folder.mkdir()
        rows = [row(f"t{count}-{i}.wav") for i in range(count)]
        (folder / "manifest.csv").write_bytes(manifest_bytes(rows))
        for i in range(count):
            (folder / f"t{count}-{i}.wav").write_bytes(tiny_wav(count * 10 + i, seconds=0.05))
        run(folder, performer.user.email, **signed(performer))
        batch = ImportBatch.objects.latest("id")
        with CaptureQueriesContext(connection) as captured:
            response = performer_client.get(reverse("recording_import_detail", args=[batch.pk]))
        assert response.status_code == 200
        return len(captured)

    assert queries_for(2) == queries_for(6)


# --- Who may see a batch -----------------------------------------------------------------------

ANON, OUTSIDER, MEMBER, OTHER_PERFORMER, OWNER, STAFF = (
    "anonymous",
    "non-performer",
    "buyer member",
    "other performer",
    "owning performer",
    "staff",
)


@pytest.fixture
def batch(performer):
    data = manifest_bytes([row("a.wav"), row("b.wav")])
    return import_batch_start(
        performer=performer,
        by=performer.user,
        manifest_file=io.BytesIO(data),
        manifest_name="session.csv",
        source=ImportBatch.Source.WEB,
        signature_name=performer.legal_name,
        consent_text_version=consent_text_current().version,
    )


@pytest.fixture
def clients(performer, outsider, member, staff_user):
    other = make_performer(email="other-performer@example.com")
    people = {
        ANON: None,
        OUTSIDER: outsider,
        MEMBER: member,
        OTHER_PERFORMER: other.user,
        OWNER: performer.user,
        STAFF: staff_user,
    }
    result = {}
    for role, user in people.items():
        client = Client()
        if user is not None:
            client.force_login(user)
        result[role] = client
    return result


@pytest.mark.parametrize(
    "method, name, expected",
    [
        (
            "get",
            "recording_import_new",
            {ANON: 302, OUTSIDER: 404, MEMBER: 404, OTHER_PERFORMER: 200, OWNER: 200, STAFF: 404},
        ),
        (
            "get",
            "recording_import_detail",
            {ANON: 302, OUTSIDER: 404, MEMBER: 404, OTHER_PERFORMER: 404, OWNER: 200, STAFF: 404},
        ),
        (
            "post",
            "recording_import_file",
            {ANON: 302, OUTSIDER: 404, MEMBER: 404, OTHER_PERFORMER: 404, OWNER: 200, STAFF: 404},
        ),
    ],
)
def test_only_the_batchs_performer_sees_it(clients, batch, method, name, expected):
    args = [] if name == "recording_import_new" else [batch.pk]
    url = reverse(name, args=args)
    for role, client in clients.items():
        if method == "get":
            response = client.get(url)
        else:
            response = client.post(
                url,
                {"files": SimpleUploadedFile("a.wav", tiny_wav(1), "audio/wav")},
                HTTP_ACCEPT="application/json",
            )
        assert response.status_code == expected[role], role
        if expected[role] == 302:
            assert response["Location"].startswith(reverse("account_login"))
    # Only the owner's upload imported anything.
    assert Recording.objects.count() == (1 if method == "post" else 0)


def test_a_missing_batch_is_404_for_its_owner_too(performer_client):
    response = performer_client.get(reverse("recording_import_detail", args=[999_999]))
    assert response.status_code == 404


def test_the_import_endpoints_are_csrf_protected(performer, batch):
    client = Client(enforce_csrf_checks=True)
    client.force_login(performer.user)
    response = client.post(
        reverse("recording_import_file", args=[batch.pk]),
        {"files": SimpleUploadedFile("a.wav", tiny_wav(1), "audio/wav")},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 403
    response = client.post(
        reverse("recording_import_new"),
        {
            "manifest": SimpleUploadedFile("m.csv", manifest_bytes([row("x.wav")])),
            "signature_name": performer.legal_name,
            "consent_text_version": consent_text_current().version,
        },
    )
    assert response.status_code == 403
    assert Recording.objects.count() == 0
    assert ImportBatch.objects.count() == 1  # the fixture's

    # With the token from the page, the same upload works.
    page = client.get(reverse("recording_import_detail", args=[batch.pk]))
    token = page.cookies["csrftoken"].value
    response = client.post(
        reverse("recording_import_file", args=[batch.pk]),
        {"files": SimpleUploadedFile("a.wav", tiny_wav(1), "audio/wav")},
        HTTP_ACCEPT="application/json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert response.status_code == 200
    assert json.loads(response.content)["results"][0]["row"]["status"] == "imported"


# --- A session's worth of takes through the browser ----------------------------------------------

BATCH_SIZE = 100
# Rows the manifest itself refuses, and files that are not what they claim.
BAD_MANIFEST_ROWS = {
    7: ({"primary_emotion": "angry"}, "unknown_emotion"),
    23: ({"intensity": "9"}, "out_of_range"),
    41: ({"recording_date": TOMORROW}, "date_in_future"),
}
BAD_FILES = {58: "unsupported_media_type", 76: "corrupt_media"}
# Queries to import one good file: the row, the recording with provenance,
# split and audit, the signature, the consent and its event, the catalogue
# refresh. About 30 when written (35 for a request of one file, with the
# session, user, batch and summary); the bound leaves room for a query or
# two more per file, not for one per row of the batch.
QUERIES_PER_FILE = 32
QUERIES_PER_REQUEST = 6


def session_of_takes() -> tuple[list[dict], dict[str, bytes]]:
    rows, files = [], {}
    for i in range(BATCH_SIZE):
        name = f"take-{i:03}.wav"
        overrides, _ = BAD_MANIFEST_ROWS.get(i, ({}, ""))
        rows.append(row(name, **{"intensity": str(i % 5 + 1), **overrides}))
        files[name] = tiny_wav(i, seconds=0.05)
    files["take-058.wav"] = b"Notes from the session, saved with the wrong name.\n" * 20
    good = tiny_wav(1000 + 76, seconds=0.5)
    files["take-076.wav"] = good[: len(good) // 2]  # cut off mid-stream
    return rows, files


def expected_outcome(i: int, *, rerun: bool = False) -> tuple[str, str]:
    if i in BAD_MANIFEST_ROWS:
        return "refused", BAD_MANIFEST_ROWS[i][1]
    if i in BAD_FILES:
        return "refused", BAD_FILES[i]
    return ("already_imported" if rerun else "imported"), ""


def upload_session(client, batch, files, mode) -> tuple[list[dict], dict[str, int]]:
    """Upload every file as the page does: its script sends one file per
    request; without the script the form posts them all at once. Returns
    the answers, and (one file per request) the queries each file took."""
    url = reverse("recording_import_file", args=[batch.pk])
    if mode == "one file per request":
        results, queries = [], {}
        for name, data in files.items():
            with CaptureQueriesContext(connection) as captured:
                response = client.post(
                    url,
                    {"files": SimpleUploadedFile(name, data, "audio/wav")},
                    HTTP_ACCEPT="application/json",
                )
            assert response.status_code == 200, response.content
            results += response.json()["results"]
            queries[name] = len(captured)
        return results, queries
    response = client.post(
        url,
        {"files": [SimpleUploadedFile(n, d, "audio/wav") for n, d in files.items()]},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 200, response.content
    return response.json()["results"], {}


def assert_no_growth_per_file(queries: dict[str, int]) -> None:
    """A late file costs what the first did (one file per request). The very
    last also finishes the batch, which takes a few queries of its own."""
    good = [
        count
        for i, count in enumerate(queries.values())
        if i not in BAD_MANIFEST_ROWS and i not in BAD_FILES
    ]
    if good:
        assert max(good[-10:-1]) <= good[0] + 2, good


@pytest.mark.parametrize("mode", ["one file per request", "all files in one request"])
def test_a_batch_of_100_files_imports_through_the_browser(
    performer_client, performer, settings, django_assert_max_num_queries, mode
):
    rows, files = session_of_takes()
    response = start_web_batch(performer_client, performer, rows)
    batch = ImportBatch.objects.get()
    assert response["Location"] == reverse("recording_import_detail", args=[batch.pk])
    requests = BATCH_SIZE if mode == "one file per request" else 1

    with django_assert_max_num_queries(
        QUERIES_PER_FILE * BATCH_SIZE + QUERIES_PER_REQUEST * requests
    ):
        results, queries = upload_session(performer_client, batch, files, mode)
    assert_no_growth_per_file(queries)

    # Every file has an answer, and every row its outcome.
    assert [r["file_name"] for r in results] == list(files)
    by_name = {r["file_name"]: r for r in results}
    for i in BAD_MANIFEST_ROWS:
        assert by_name[f"take-{i:03}.wav"]["error"]["code"] == "row_refused"
    outcome = {r.file_name: (r.status, r.error_code) for r in batch.rows.all()}
    assert outcome == {f"take-{i:03}.wav": expected_outcome(i) for i in range(BATCH_SIZE)}
    good = BATCH_SIZE - len(BAD_MANIFEST_ROWS) - len(BAD_FILES)
    assert Recording.objects.filter(performer=performer).count() == good
    assert ConsentRecord.objects.count() == EmotionalSignature.objects.count() == good
    assert Provenance.objects.count() == good
    assert len(stored_originals(settings)) == good
    imported = batch.rows.get(file_name="take-042.wav").recording
    assert imported.signature.intensity == 3 and imported.provenance.studio == "Studio B"
    batch.refresh_from_db()
    assert batch.finished_at is not None

    page = performer_client.get(reverse("recording_import_detail", args=[batch.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert html.count('href="/recordings/REC-') >= good
    assert "must be 1 to 5 (found 9)" in html

    # The same session again: a new batch, the same manifest and files.
    start_web_batch(performer_client, performer, rows)
    rerun = ImportBatch.objects.exclude(pk=batch.pk).get()
    with django_assert_max_num_queries(
        QUERIES_PER_FILE * BATCH_SIZE + QUERIES_PER_REQUEST * requests
    ):
        _, queries = upload_session(performer_client, rerun, files, mode)
    assert_no_growth_per_file(queries)
    outcome = {r.file_name: (r.status, r.error_code) for r in rerun.rows.all()}
    assert outcome == {
        f"take-{i:03}.wav": expected_outcome(i, rerun=True) for i in range(BATCH_SIZE)
    }
    assert Recording.objects.count() == good
    assert ConsentRecord.objects.count() == good
    assert len(stored_originals(settings)) == good
    first = {r.file_name: r.recording_id for r in batch.rows.exclude(recording=None)}
    again = {r.file_name: r.recording_id for r in rerun.rows.exclude(recording=None)}
    assert again == first
