"""Catalogue test data: real (tiny) audio, and recordings made sellable
through the project's own services."""

from __future__ import annotations

import io
import math
import struct
import wave
from datetime import date

from django.core.files.base import ContentFile

from accounts.models import PerformerProfile, User
from marketplace import services
from marketplace.models import Listing, Recording
from marketplace.services import ListingTerms, consent_text_current


def wav_bytes(
    seconds: float = 1.0, *, rate: int = 16_000, channels: int = 1, freq: float = 440.0
) -> bytes:
    """A real PCM WAV file: a sine tone, made with the standard library."""
    frames = int(seconds * rate)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        samples = bytearray()
        for i in range(frames):
            value = int(12_000 * math.sin(2 * math.pi * freq * i / rate))
            samples += struct.pack("<h", value) * channels
        out.writeframes(bytes(samples))
    return buffer.getvalue()


def _with_title(data: bytes, title: str) -> bytes:
    """The WAV with a RIFF INFO chunk naming its title, so takes with different
    titles are different files (the same file twice is a duplicate)."""
    text = title.encode() + b"\x00"
    if len(text) % 2:
        text += b"\x00"
    info = b"INFO" + b"INAM" + struct.pack("<I", len(text)) + text
    body = data[12:] + b"LIST" + struct.pack("<I", len(info)) + info
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body


def make_recording(
    performer: PerformerProfile,
    *,
    title: str = "Take 1",
    seconds: float = 2.0,
    language: str = "en",
    freq: float = 440.0,
) -> Recording:
    """A recording with a real WAV file, uploaded through the real service
    (``recording_create``): provenance started from the performer's profile
    and a 100% split. The file's bytes depend on the title, seconds and freq."""
    from marketplace.services.recordings import recording_create

    data = _with_title(wav_bytes(seconds, freq=freq), title)
    return recording_create(
        performer=performer,
        by=performer.user,
        file=ContentFile(data, name=f"{title}.wav"),
        original_filename=f"{title}.wav",
        title=title,
        language=language,
    )


def make_sellable_recording(
    performer: PerformerProfile,
    *,
    title: str = "Take 1",
    emotion: str = "grief",
    intensity: int = 4,
    authenticity: str = "genuine",
    valence: float = -0.7,
    arousal: float = 0.6,
    uses: tuple[str, ...] = ("model_training", "evaluation"),
    seconds: float = 2.0,
    language: str = "en",
    tags: tuple[str, ...] = (),
    description: str = "",
) -> Recording:
    """Provenance complete, consent given, signature described: ready to list."""
    user: User = performer.user
    recording = make_recording(performer, title=title, seconds=seconds, language=language)
    services.provenance_save(
        recording=recording,
        by=user,
        performer_name=performer.legal_name,
        performer_contact=performer.contact_email,
        recording_date=date(2026, 10, 1),
        session_name="Session A",
    )
    services.consent_give(
        recording=recording,
        by=user,
        allowed_uses=list(uses),
        sensitive_content=[],
        sensitive_content_licensable=False,
        signature_name=performer.legal_name,
        consent_text_version=consent_text_current().version,
        ip_address="203.0.113.7",
    )
    services.signature_save(
        recording=recording,
        by=user,
        primary_emotion=emotion,
        intensity=intensity,
        valence=valence,
        arousal=arousal,
        authenticity=authenticity,
        tags=list(tags),
        description=description,
    )
    return recording


def make_published_listing(
    performer: PerformerProfile,
    recordings: list[Recording],
    *,
    reviewer: User,
    title: str = "Grief, held back",
    price_minor: int = 50_000,
    uses: tuple[str, ...] = ("model_training",),
    **terms,
) -> Listing:
    listing = services.listing_create(
        performer=performer,
        by=performer.user,
        recording_ids=[r.pk for r in recordings],
        terms=ListingTerms(
            title=title, price_minor=price_minor, permitted_uses=list(uses), **terms
        ),
    )
    services.listing_submit(listing=listing, by=performer.user)
    services.listing_review(listing=listing, by=reviewer, approve=True)
    listing.refresh_from_db()
    return listing
