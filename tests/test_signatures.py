"""Emotional signatures: every bad input is refused naming the field (or the
arc segment), and nothing is saved, not even half of it."""

from __future__ import annotations

import pytest
from django.urls import reverse

from core.errors import NotFound, ValidationError
from marketplace import services
from marketplace.models import CatalogueEntry, EmotionalSignature
from tests.factories import make_performer
from tests.factories_marketplace import (
    make_published_listing,
    make_recording,
    make_sellable_recording,
)
from tests.listings_support import catalogue_snapshot, make_staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def performer(db):
    return make_performer(email="bo@example.com", stage_name="Bo", legal_name="Bo Lindqvist")


@pytest.fixture
def recording(performer):
    return make_recording(performer, title="Ten seconds", seconds=10.0)


GOOD = {
    "primary_emotion": "grief",
    "intensity": 4,
    "valence": -0.8,
    "arousal": 0.4,
    "authenticity": "genuine",
    "arc": [
        {"start": 0, "end": 4, "emotion": "anger", "intensity": 4, "note": "builds"},
        {"start": 4, "end": 9.5, "emotion": "grief", "intensity": 5},
    ],
    "action_units": [1, "AU4", 15],
    "vocal_events": ["sob", "sigh"],
    "annotator": "self",
    "description": "A phone call from the hospital.",
    "tags": ["Hospital", "phone call", "hospital"],
}


def save(recording, **overrides):
    values = {**GOOD, **overrides}
    return services.signature_save(recording=recording, by=recording.performer.user, **values)


def test_a_good_signature_is_saved_cleaned(recording):
    signature = save(recording)
    assert signature.primary_emotion == "grief"
    assert signature.arc[0] == {
        "start": 0.0,
        "end": 4.0,
        "emotion": "anger",
        "intensity": 4,
        "note": "builds",
    }
    assert signature.action_units == [1, 4, 15]
    assert signature.tags == ["hospital", "phone call"]
    assert signature.vocal_events == ["sob", "sigh"]


def test_arc_segments_are_sorted_and_may_touch(recording):
    signature = save(
        recording,
        arc=[
            {"start": 5, "end": 10, "emotion": "relief", "intensity": 2},
            {"start": 0, "end": 5, "emotion": "fear", "intensity": 3},
        ],
    )
    assert [s["emotion"] for s in signature.arc] == ["fear", "relief"]


BAD = [
    ({"primary_emotion": "melancholy"}, "primary_emotion", "unknown_emotion", None),
    ({"intensity": 0}, "intensity", None, None),
    ({"intensity": 6}, "intensity", None, None),
    ({"intensity": 2.5}, "intensity", None, None),
    ({"valence": 2}, "valence", None, None),
    ({"valence": "nan"}, "valence", None, None),
    ({"arousal": -0.1}, "arousal", None, None),
    ({"arousal": "loud"}, "arousal", None, None),
    ({"authenticity": "sincere"}, "authenticity", "unknown_choice", None),
    ({"annotator": "crowd"}, "annotator", "unknown_choice", None),
    ({"action_units": [3]}, "action_units", "unknown_choice", None),
    ({"action_units": ["AUx"]}, "action_units", None, None),
    ({"vocal_events": ["hiccup"]}, "vocal_events", "unknown_choice", None),
    ({"tags": "not, a, list"}, "tags", None, None),
    (
        {
            "arc": [
                {"start": 0, "end": 5, "emotion": "anger", "intensity": 3},
                {"start": 4, "end": 8, "emotion": "grief", "intensity": 3},
            ]
        },
        "arc",
        "arc_overlap",
        2,
    ),
    (
        {"arc": [{"start": 2, "end": 12, "emotion": "joy", "intensity": 3}]},
        "arc",
        "arc_out_of_range",
        1,
    ),
    (
        {
            "arc": [
                {"start": 0, "end": 1, "emotion": "joy", "intensity": 3},
                {"start": 5, "end": 5, "emotion": "joy", "intensity": 3},
            ]
        },
        "arc",
        "arc_invalid_segment",
        2,
    ),
    (
        {"arc": [{"start": 6, "end": 3, "emotion": "joy", "intensity": 3}]},
        "arc",
        "arc_invalid_segment",
        1,
    ),
    (
        {"arc": [{"start": 0, "end": 3, "emotion": "wistful", "intensity": 3}]},
        "arc",
        "unknown_emotion",
        1,
    ),
    ({"arc": [{"start": 0, "end": 3, "emotion": "joy", "intensity": 9}]}, "arc", None, 1),
    ({"arc": [{"start": "soon", "end": 3, "emotion": "joy"}]}, "arc", None, 1),
    ({"arc": [{"start": "nan", "end": 3, "emotion": "joy"}]}, "arc", None, 1),
    ({"arc": "0-4 anger"}, "arc", None, None),
]


@pytest.mark.parametrize(
    ("overrides", "field", "code", "segment"),
    BAD,
    ids=[f"{f}:{next(iter(o.values()))!r}"[:60] for o, f, *_ in BAD],
)
def test_bad_signature_refused_naming_the_field_and_nothing_saved(
    recording, overrides, field, code, segment
):
    before = catalogue_snapshot()
    with pytest.raises(ValidationError) as exc:
        save(recording, **overrides)
    assert list(exc.value.details["fields"]) == [field]
    if code:
        assert exc.value.code == code
    if segment:
        assert exc.value.details["segment"] == segment
        assert f"egment {segment}" in exc.value.message
    assert catalogue_snapshot() == before
    assert not EmotionalSignature.objects.exists()


def test_a_refused_edit_leaves_the_previous_signature_exactly(recording):
    save(recording)
    before = catalogue_snapshot()
    with pytest.raises(ValidationError):
        save(recording, primary_emotion="joy", arc=[{"start": 0, "end": 99, "emotion": "joy"}])
    assert catalogue_snapshot() == before
    assert EmotionalSignature.objects.get().primary_emotion == "grief"


def test_another_performer_cannot_describe_my_recording(recording):
    other = make_performer(email="x@example.com")
    with pytest.raises(NotFound):
        services.signature_save(recording=recording, by=other.user, **GOOD)
    assert not EmotionalSignature.objects.exists()


def test_signature_change_on_a_listed_recording_updates_the_catalogue(performer):
    recording = make_sellable_recording(performer, emotion="grief", intensity=4)
    make_published_listing(performer, [recording], reviewer=make_staff())
    services.signature_save(
        recording=recording,
        by=performer.user,
        primary_emotion="relief",
        intensity=2,
        valence=0.5,
        arousal=0.2,
        authenticity="genuine",
    )
    entry = CatalogueEntry.objects.get(recording=recording)
    assert (entry.primary_emotion, entry.intensity) == ("relief", 2)


# --- The signature page and its ARC editor -------------------------------------------------


def _post(recording, rows, **overrides):
    data = {
        "primary_emotion": "grief",
        "intensity": "4",
        "valence": "-0.5",
        "arousal": "0.6",
        "authenticity": "suppressed",
        "annotator": "self",
        "description": "Held back.",
        "tags": "whisper, hospital",
        "vocal_events": ["sigh"],
        "action_units": ["1", "15"],
        "arc_start": [r[0] for r in rows],
        "arc_end": [r[1] for r in rows],
        "arc_emotion": [r[2] for r in rows],
        "arc_intensity": [r[3] for r in rows],
        "arc_note": [r[4] for r in rows],
    }
    data.update(overrides)
    return data


def test_signature_page_offers_six_blank_arc_rows_without_javascript(client, recording):
    client.force_login(recording.performer.user)
    response = client.get(reverse("recording_signature", args=[recording.uid]))
    assert response.status_code == 200
    body = response.content.decode()
    assert body.count('name="arc_start"') == 6 + 1  # six rows and the JS template row
    assert "js/arc-editor.js" in body
    assert 'type="range"' in body  # the sliders beside valence and arousal


def test_signature_form_saves_arc_rows_skipping_blank_ones(client, recording):
    client.force_login(recording.performer.user)
    rows = [
        ("0", "4", "anger", "4", "rising"),
        ("", "", "", "3", ""),
        ("4", "9", "grief", "5", ""),
    ]
    response = client.post(
        reverse("recording_signature", args=[recording.uid]), _post(recording, rows)
    )
    assert response.status_code == 302
    signature = EmotionalSignature.objects.get(recording=recording)
    assert [(s["start"], s["end"], s["emotion"]) for s in signature.arc] == [
        (0.0, 4.0, "anger"),
        (4.0, 9.0, "grief"),
    ]
    assert signature.tags == ["whisper", "hospital"]
    assert signature.action_units == [1, 15]


def test_signature_form_names_the_bad_segment_and_saves_nothing(client, recording):
    client.force_login(recording.performer.user)
    rows = [("0", "5", "anger", "4", ""), ("4", "8", "grief", "3", "")]
    response = client.post(
        reverse("recording_signature", args=[recording.uid]), _post(recording, rows)
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "Segment 2 (4–8 s) overlaps segment 1 (0–5 s)." in body
    assert 'class="has-error"' in body
    assert "Nothing was saved" in body
    assert not EmotionalSignature.objects.exists()


def test_signature_form_refuses_a_segment_past_the_end(client, recording):
    client.force_login(recording.performer.user)
    rows = [("8", "11", "joy", "2", "")]
    response = client.post(
        reverse("recording_signature", args=[recording.uid]), _post(recording, rows)
    )
    assert response.status_code == 200
    assert (
        "Segment 1 ends at 11 s, after the recording ends (10.00 s)." in response.content.decode()
    )
    assert not EmotionalSignature.objects.exists()


# --- The API ---------------------------------------------------------------------------------


def test_api_put_signature(client, recording):
    client.force_login(recording.performer.user)
    response = client.put(
        f"/api/v1/recordings/{recording.uid}/signature/", GOOD, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["primary_emotion"] == "grief"
    assert response.json()["arc"][1]["emotion"] == "grief"


def test_api_signature_errors_name_the_field(client, recording):
    client.force_login(recording.performer.user)
    response = client.put(
        f"/api/v1/recordings/{recording.uid}/signature/",
        {**GOOD, "valence": 2},
        content_type="application/json",
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert list(error["details"]["fields"]) == ["valence"]
    response = client.put(
        f"/api/v1/recordings/{recording.uid}/signature/",
        {**GOOD, "mood": "blue"},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["details"]["fields"] == {"mood": ["Unknown field."]}
    assert not EmotionalSignature.objects.exists()


def test_api_provenance_put(client, recording):
    client.force_login(recording.performer.user)
    url = f"/api/v1/recordings/{recording.uid}/provenance/"
    response = client.put(
        url,
        {
            "performer_name": "Bo Lindqvist",
            "performer_contact": "bo@example.com",
            "recording_date": "2026-09-30",
            "studio": "Studio 4",
        },
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["missing_fields"] == []
    response = client.put(
        url,
        {"performer_name": "Bo", "performer_contact": "bo@x", "recording_date": "30/09/2026"},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert list(response.json()["error"]["details"]["fields"]) == ["recording_date"]
    response = client.put(
        url,
        {"performer_name": "Bo", "performer_contact": "bo@x", "recording_date": "2999-01-01"},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "future" in response.json()["error"]["message"]
