"""Catalogue search benchmark.

Loads N recordings (default 100,000) with provenance, consent, emotional
signatures, splits, listings (singles and packs) and their catalogue index
into a PostgreSQL database of its own, then measures search latency through
the API (``GET /api/v1/catalogue/?…`` with Django's test client, in process:
URL routing, middleware, DRF, validation, every query and serialization)
over a fixed mix of filter combinations, and beside it the same search as
hand-written SQL through psycopg (count + one page), in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/residuals_bench \\
        .venv/bin/python bench/catalogue.py [--recordings 100000] [--repeat 20]

The database name must contain "bench": the script creates it if missing,
migrates it, and empties the tables it fills before loading (TRUNCATE). With
``--reuse`` an existing load of the same size is measured again without
reloading. ``--drop`` drops the database at the end.

Data is written with bulk inserts, not the per-row services, but shaped as
the services shape it: the catalogue rows' ``search_document`` is built by the
same function ``marketplace.services.catalogue_refresh_listing`` uses, and a
listing's permitted uses never exceed its recordings' consent.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import os
import random
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode, urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("RESIDUALS_ENV", "development")
os.environ.setdefault("DEBUG", "0")  # no query log: it would slow the API and grow without end
# Persistent connections, as in production (README): without them every
# request would also pay for a new PostgreSQL connection.
os.environ.setdefault("CONN_MAX_AGE", "60")

SEED = 2026
BATCH = 2000

# --- What the data looks like ------------------------------------------------------------

EMOTION_WEIGHTS = {
    "neutral": 6, "calm": 6, "joy": 8, "amusement": 6, "sadness": 8, "grief": 6, "anger": 8,
    "frustration": 6, "fear": 6, "anxiety": 6, "disgust": 3, "contempt": 3, "surprise": 5,
    "shame": 3, "guilt": 3, "embarrassment": 3, "pride": 3, "relief": 4, "tenderness": 4,
    "confusion": 3,
}  # fmt: skip
VALENCE = {
    "neutral": 0.0, "calm": 0.4, "joy": 0.8, "amusement": 0.7, "sadness": -0.6, "grief": -0.8,
    "anger": -0.7, "frustration": -0.5, "fear": -0.7, "anxiety": -0.5, "disgust": -0.6,
    "contempt": -0.4, "surprise": 0.2, "shame": -0.6, "guilt": -0.5, "embarrassment": -0.3,
    "pride": 0.7, "relief": 0.6, "tenderness": 0.7, "confusion": -0.1,
}  # fmt: skip
AROUSAL = {
    "neutral": 0.2, "calm": 0.1, "joy": 0.7, "amusement": 0.6, "sadness": 0.3, "grief": 0.5,
    "anger": 0.9, "frustration": 0.7, "fear": 0.85, "anxiety": 0.75, "disgust": 0.5,
    "contempt": 0.4, "surprise": 0.8, "shame": 0.4, "guilt": 0.35, "embarrassment": 0.5,
    "pride": 0.55, "relief": 0.3, "tenderness": 0.3, "confusion": 0.45,
}  # fmt: skip
AUTHENTICITY_WEIGHTS = {"genuine": 45, "suppressed": 15, "forced": 15, "masked": 10,
                        "exaggerated": 15}  # fmt: skip
LANGUAGES = {
    "en": 22, "en-US": 14, "en-GB": 8, "es": 6, "es-MX": 5, "es-AR": 2, "fr": 6, "fr-CA": 2,
    "de": 6, "pt-BR": 5, "it": 3, "ja": 4, "ko": 3, "zh-CN": 3, "hi": 3, "ar": 3, "nl": 2,
    "pl": 2, "sv": 1, "tr": 2,
}  # fmt: skip
USES = ["model_training", "evaluation", "fine_tuning", "synthetic_generation",
        "commercial_deployment"]  # fmt: skip
COUNTRIES = ["US", "CA", "GB", "DE", "FR", "ES", "IT", "NL", "SE", "JP", "KR", "BR", "MX", "AU",
             "IN"]  # fmt: skip
CURRENCIES = {"USD": 85, "EUR": 7, "GBP": 5, "CAD": 2, "AUD": 1}
VOCAL_EVENTS = ["laugh", "sigh", "gasp", "sob", "tremor", "scream"]
ACTION_UNITS = [1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 24, 25, 26, 43]
ADJECTIVES = [
    "restrained", "raw", "quiet", "explosive", "trembling", "bitter", "tender", "nervous",
    "hollow", "giddy", "simmering", "brittle", "warm", "cold", "breathless", "wry", "stunned",
]  # fmt: skip
SCENES = [
    "at a funeral", "after a breakup", "waiting for test results", "on a crowded train",
    "arguing over a parking ticket", "at a surprise party", "in a job interview",
    "reading a letter from a lost friend", "after a car crash", "at a wedding toast",
    "on the phone with a call centre", "hearing bad news in a hospital corridor",
    "confessing a secret", "winning a game show", "stuck in a lift", "meeting a newborn",
    "saying goodbye at an airport", "being fired", "opening an acceptance letter",
    "talking to a customer support bot", "apologising to a neighbour", "after a nightmare",
]  # fmt: skip
TAGS = [
    "widow", "funeral", "laughter", "sobbing", "whisper", "shouting", "breath", "voice cracks",
    "nervous", "sarcasm", "monologue", "dialogue", "improv", "audition", "hospital",
    "phone call", "customer support", "child", "elderly", "argument", "celebration",
    "apology", "confession", "lullaby", "panic", "sigh", "stutter", "silence", "rant",
    "pleading", "relief", "teasing", "awkward", "heartbreak", "victory", "grieving",
]  # fmt: skip
STAGE_FIRST = [
    "Ana",
    "Ben",
    "Chidi",
    "Dara",
    "Eli",
    "Farah",
    "Gus",
    "Hana",
    "Ivo",
    "Jun",
    "Kemi",
    "Lior",
    "Mina",
    "Noor",
    "Omar",
    "Pia",
    "Quin",
    "Rosa",
    "Sami",
    "Tove",
]
STAGE_LAST = ["Vale", "Reyes", "Okafor", "Lind", "Moreau", "Sato", "Kowalski", "Haddad",
              "Brennan", "Costa", "Iyer", "Novak", "Park", "Quist", "Rossi", "Silva"]  # fmt: skip


def _weighted(rng: random.Random, weights: dict) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _uid(n: int) -> str:
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    digits = []
    n = n * 7_919 + 104_729  # spread, still unique
    for _ in range(10):
        n, r = divmod(n, 32)
        digits.append(alphabet[r])
    return "REC-" + "".join(reversed(digits))


# --- Database -------------------------------------------------------------------------------


def _database_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    parsed = urlparse(url)
    if parsed.scheme not in {"postgres", "postgresql", "pgsql"}:
        sys.exit("Set DATABASE_URL to a PostgreSQL database, e.g. "
                 "postgres://postgres@127.0.0.1:5432/residuals_bench")  # fmt: skip
    name = parsed.path.lstrip("/")
    if "bench" not in name:
        sys.exit(f"Refusing to load benchmark data into {name!r}: its name must contain 'bench'.")
    return url


def _conninfo(url: str, dbname: str | None = None) -> str:
    parsed = urlparse(url)
    parts = {
        "host": parsed.hostname or "127.0.0.1",
        "port": str(parsed.port or 5432),
        "user": parsed.username or "postgres",
        "dbname": dbname or parsed.path.lstrip("/"),
    }
    if parsed.password:
        parts["password"] = parsed.password
    return " ".join(f"{k}={v}" for k, v in parts.items())


def ensure_database(url: str) -> None:
    import psycopg

    name = urlparse(url).path.lstrip("/")
    with psycopg.connect(_conninfo(url, "postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
            print(f"Created database {name}.")


def drop_database(url: str) -> None:
    import psycopg
    from django.db import connections

    connections.close_all()
    name = urlparse(url).path.lstrip("/")
    with psycopg.connect(_conninfo(url, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(f"Dropped database {name}.")


FILLED_TABLES = [
    "marketplace_catalogueentry", "marketplace_listingitem", "marketplace_listing",
    "marketplace_recordingsplit", "marketplace_emotionalsignature", "marketplace_consentevent",
    "marketplace_consentrecord", "marketplace_provenance", "marketplace_recording",
    "accounts_performerprofile", "accounts_user",
]  # fmt: skip


# --- Loading ------------------------------------------------------------------------------


def load(n_recordings: int) -> None:
    from django.contrib.auth.hashers import make_password
    from django.db import connection, transaction
    from tqdm import tqdm

    from accounts.models import PerformerProfile, User
    from marketplace.models import (
        CatalogueEntry,
        ConsentEvent,
        ConsentRecord,
        EmotionalSignature,
        Listing,
        ListingItem,
        Provenance,
        Recording,
        RecordingSplit,
    )
    from marketplace.services import _search_document, consent_text_current

    rng = random.Random(SEED)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(FILLED_TABLES)} RESTART IDENTITY CASCADE")
    consent_text = consent_text_current()
    now = datetime(2026, 11, 1, tzinfo=UTC)

    no_password = make_password(None)  # nobody signs in as bench data
    staff = User.objects.create(
        email="bench-staff@bench.example",
        full_name="Bench Staff",
        is_staff=True,
        password=no_password,
    )
    n_performers = max(1, n_recordings // 50)
    users = User.objects.bulk_create(
        [
            User(email=f"bench-{i}@bench.example", full_name=f"Performer {i}", password=no_password)
            for i in range(n_performers)
        ],
        batch_size=BATCH,
    )
    performers = PerformerProfile.objects.bulk_create(
        [
            PerformerProfile(
                user=user,
                stage_name=f"{rng.choice(STAGE_FIRST)} {rng.choice(STAGE_LAST)}",
                legal_name=user.full_name,
                contact_email=user.email,
                country=rng.choice(COUNTRIES),
            )
            for user in users
        ],
        batch_size=BATCH,
    )
    # How many takes each performer has: a long tail, summing to n_recordings.
    weights = [min(rng.paretovariate(1.5), 25.0) for _ in range(n_performers)]
    counts = [1] * n_performers
    for index in rng.choices(range(n_performers), weights, k=n_recordings - n_performers):
        counts[index] += 1

    progress = tqdm(total=n_recordings, unit="rec", desc="Loading", smoothing=0.05)
    serial = 0
    chunk: list[tuple] = []

    def flush(chunk: list[tuple]) -> None:
        if not chunk:
            return
        with transaction.atomic():
            _write_chunk(chunk)
        progress.update(sum(len(recs) for _, recs in chunk))

    def _write_chunk(chunk: list[tuple]) -> None:
        takes = [(performer, *take) for performer, recs in chunk for take in recs]
        Recording.objects.bulk_create([rec for _, rec, _, _, _ in takes], batch_size=BATCH)
        provenances, consents, signatures, splits = [], [], [], []
        for performer, rec, prov, consent, sig in takes:
            prov.recording = rec
            consent.recording = rec
            sig.recording = rec
            provenances.append(prov)
            consents.append(consent)
            signatures.append(sig)
            splits.append(RecordingSplit(recording=rec, performer=performer, share_bps=10_000))
        Provenance.objects.bulk_create(provenances, batch_size=BATCH)
        ConsentRecord.objects.bulk_create(consents, batch_size=BATCH)
        ConsentEvent.objects.bulk_create(
            [
                ConsentEvent(
                    consent=c,
                    kind=ConsentEvent.Kind.GIVEN,
                    at=c.signed_at,
                    actor_id=c.signed_by_id,
                    ip_address=c.ip_address,
                    data={
                        "allowed_uses": c.allowed_uses,
                        "sensitive_content": [],
                        "version": consent_text.version,
                    },
                )
                for c in consents
            ],
            batch_size=BATCH,
        )
        EmotionalSignature.objects.bulk_create(signatures, batch_size=BATCH)
        RecordingSplit.objects.bulk_create(splits, batch_size=BATCH)

        listings, groups = [], []
        for performer, recs in chunk:
            pending = list(recs)
            while pending:
                size = 1 if rng.random() < 0.8 else rng.randint(2, 12)
                group, pending = pending[:size], pending[size:]
                allowed = set(group[0][2].allowed_uses)
                for _, _, consent, _ in group[1:]:
                    allowed &= set(consent.allowed_uses)
                if not allowed:  # no use they all consent to: the first goes alone
                    group, pending = group[:1], group[1:] + pending
                    allowed = set(group[0][2].allowed_uses)
                listing = _listing(rng, performer, group, sorted(allowed), staff, now)
                listings.append(listing)
                groups.append(group)
        Listing.objects.bulk_create(listings, batch_size=BATCH)
        items, entries = [], []
        for listing, group in zip(listings, groups, strict=True):
            for position, (rec, _, _, sig) in enumerate(group):
                items.append(ListingItem(listing=listing, recording=rec, position=position))
                if listing.status == Listing.Status.PUBLISHED:
                    entries.append(_entry(listing, rec, sig, _search_document))
        ListingItem.objects.bulk_create(items, batch_size=BATCH)
        CatalogueEntry.objects.bulk_create(entries, batch_size=BATCH)

    for performer, count in zip(performers, counts, strict=True):
        recs = []
        for _ in range(count):
            serial += 1
            recs.append(_recording(rng, performer, serial, consent_text, now))
        chunk.append((performer, recs))
        if sum(len(r) for _, r in chunk) >= 4000:
            flush(chunk)
            chunk = []
    flush(chunk)
    progress.close()
    print("Analyzing tables …")
    with connection.cursor() as cursor:
        for table in FILLED_TABLES:
            cursor.execute(f"VACUUM ANALYZE {table}")


def _recording(rng, performer, serial: int, consent_text, now):
    from marketplace.models import ConsentRecord, EmotionalSignature, Provenance, Recording
    from marketplace.services import _clean_tags

    uid = _uid(serial)
    video = rng.random() < 0.12
    duration = round(min(600.0, max(1.5, rng.lognormvariate(3.0, 0.9))), 2)
    scene = rng.choice(SCENES)
    language = _weighted(rng, LANGUAGES)
    recording = Recording(
        uid=uid,
        performer=performer,
        title=f"Take {rng.randint(1, 60)}, {scene}",
        language=language,
        status=Recording.Status.ACTIVE,
        file=f"recordings/{performer.pk}/{uid}/original.{'mp4' if video else 'wav'}",
        original_filename=f"take-{serial}.{'mp4' if video else 'wav'}",
        size_bytes=int(duration * (600_000 if video else 96_000)),
        sha256=hashlib.sha256(f"bench-{serial}".encode()).hexdigest(),
        media_kind="video" if video else "audio",
        container="mp4" if video else "wav",
        mime_type="video/mp4" if video else "audio/wav",
        codec="h264" if video else "pcm_s16le",
        duration_seconds=duration,
        sample_rate=48_000,
        channels=1 if rng.random() < 0.7 else 2,
        width=1920 if video else None,
        height=1080 if video else None,
        frame_rate=25.0 if video else None,
        preview=f"previews/{uid}.{'mp4' if video else 'mp3'}",
        preview_status=Recording.PreviewStatus.READY,
    )
    recorded = date(2024, 1, 1) + timedelta(days=rng.randrange(1000))
    provenance = Provenance(
        performer_name=performer.legal_name,
        performer_contact=performer.contact_email,
        recording_date=recorded,
        session_name=f"Session {rng.randint(1, 400)}",
        studio=rng.choice(["", "Studio North", "Home booth", "Blackbox Theatre"]),
    )
    if rng.random() < 0.04:
        uses = ["research_only"]
    else:
        uses = [u for u in USES if rng.random() < 0.6] or ["model_training"]
    signed_at = now - timedelta(days=rng.randrange(700), seconds=rng.randrange(86_400))
    consent = ConsentRecord(
        consent_text=consent_text,
        consent_text_sha256=consent_text.sha256,
        allowed_uses=uses,
        sensitive_content=[],
        sensitive_content_licensable=False,
        signature_name=performer.legal_name,
        signed_by_id=performer.user_id,
        signed_at=signed_at,
        ip_address="203.0.113.7",
        user_agent="bench",
    )
    emotion = _weighted(rng, EMOTION_WEIGHTS)
    intensity = rng.choices([1, 2, 3, 4, 5], weights=[8, 18, 30, 26, 18])[0]
    arc = []
    if rng.random() < 0.7:
        cuts = sorted(rng.uniform(0, duration) for _ in range(rng.randint(0, 3)))
        bounds = [0.0, *cuts, duration]
        for start, end in itertools.pairwise(bounds):
            if end - start < 0.2:
                continue
            arc.append(
                {
                    "start": round(start, 2),
                    "end": round(end, 2),
                    "emotion": emotion if rng.random() < 0.5 else _weighted(rng, EMOTION_WEIGHTS),
                    "intensity": rng.randint(1, 5),
                    "note": "",
                }
            )
    signature = EmotionalSignature(
        primary_emotion=emotion,
        intensity=intensity,
        valence=round(max(-1, min(1, VALENCE[emotion] + rng.uniform(-0.25, 0.25))), 2),
        arousal=round(max(0, min(1, AROUSAL[emotion] + rng.uniform(-0.2, 0.2))), 2),
        authenticity=_weighted(rng, AUTHENTICITY_WEIGHTS),
        arc=arc,
        action_units=sorted(rng.sample(ACTION_UNITS, rng.randint(0, 4))) if video else [],
        vocal_events=sorted(set(rng.sample(VOCAL_EVENTS, rng.randint(0, 2)))),
        annotator=rng.choices(["self", "expert", "automatic"], weights=[70, 20, 10])[0],
        description=f"A {rng.choice(ADJECTIVES)} take {scene}.",
        tags=_clean_tags(rng.sample(TAGS, rng.randint(1, 5))),
    )
    return recording, provenance, consent, signature


def _listing(rng, performer, group, uses, staff, now):
    from marketplace.models import Listing

    rec = group[0][0]
    scene = rec.title.split(", ", 1)[-1]
    published_at = now - timedelta(days=rng.randrange(720), seconds=rng.randrange(86_400))
    status = Listing.Status.PUBLISHED if rng.random() < 0.92 else (
        rng.choice([Listing.Status.DRAFT, Listing.Status.IN_REVIEW, Listing.Status.UNPUBLISHED])
    )  # fmt: skip
    worldwide = rng.random() < 0.7
    price = int(min(500_000, max(1_000, rng.lognormvariate(10.3, 0.9))) // 100 * 100)
    if len(group) > 1:
        price *= len(group) // 2 + 1
    listing_uses = [u for u in uses if rng.random() < 0.85] or uses[:1]
    return Listing(
        performer=performer,
        title=(
            f"{rng.choice(ADJECTIVES).capitalize()} {scene}"
            if len(group) == 1
            else f"{rng.choice(ADJECTIVES).capitalize()} moments: {len(group)} takes"
        ),
        description=f"Performed {scene}, {rng.choice(ADJECTIVES)} and unscripted.",
        status=status,
        duration_days=rng.choice([365, 730, 730, 730, 1095]),
        permitted_uses=listing_uses,
        worldwide=worldwide,
        territories=[] if worldwide else sorted(rng.sample(COUNTRIES, rng.randint(1, 5))),
        price_minor=price,
        currency=_weighted(rng, CURRENCIES),
        revenue_share_bps=rng.choice([1000, 1500, 2000, 2000, 2000, 2500]),
        revenue_threshold_minor=rng.choice([500_000, 1_000_000, 1_000_000, 2_500_000]),
        per_unit_rates=(
            {"training_run": {"amount_minor": rng.choice([500, 1000, 2500]), "per": 1}}
            if rng.random() < 0.3
            else {}
        ),
        reuse_caps={"max_models_trained": rng.randint(1, 10)} if rng.random() < 0.25 else {},
        submitted_at=published_at - timedelta(days=1),
        reviewed_at=published_at if status == Listing.Status.PUBLISHED else None,
        reviewed_by=staff if status == Listing.Status.PUBLISHED else None,
        published_at=published_at if status == Listing.Status.PUBLISHED else None,
    )


def _entry(listing, rec, sig, search_document):
    from marketplace.models import CatalogueEntry

    uses = set(listing.permitted_uses)
    return CatalogueEntry(
        listing=listing,
        recording=rec,
        performer_id=rec.performer_id,
        primary_emotion=sig.primary_emotion,
        intensity=sig.intensity,
        valence=sig.valence,
        arousal=sig.arousal,
        authenticity=sig.authenticity,
        language=rec.language.lower(),
        media_kind=rec.media_kind,
        duration_seconds=rec.duration_seconds,
        price_minor=listing.price_minor,
        currency=listing.currency,
        use_model_training="model_training" in uses,
        use_evaluation="evaluation" in uses,
        use_fine_tuning="fine_tuning" in uses,
        use_synthetic_generation="synthetic_generation" in uses,
        use_commercial_deployment="commercial_deployment" in uses,
        use_research_only="research_only" in uses,
        worldwide=listing.worldwide,
        territories="" if listing.worldwide else "|" + "|".join(listing.territories) + "|",
        search_document=search_document(listing, rec, sig),
        published_at=listing.published_at,
    )


# --- The mix ----------------------------------------------------------------------------------


def combos(performer_id: int) -> list[tuple[str, dict]]:
    """A fixed mix of what buyers search for."""
    return [
        ("everything, newest", {}),
        ("grief, intensity ≥ 4", {"emotion": "grief", "intensity_min": 4}),
        ("anger|frustration, intensity 3–5",
         {"emotion": ["anger", "frustration"], "intensity_min": 3, "intensity_max": 5}),
        ("joy + genuine + en", {"emotion": "joy", "authenticity": "genuine", "language": "en"}),
        ("fear + masked|suppressed + es",
         {"emotion": "fear", "authenticity": ["masked", "suppressed"], "language": "es"}),
        ("text: grieving", {"q": "grieving"}),
        ('text: "voice cracks"', {"q": '"voice cracks"'}),
        ("text: nervous laughter", {"q": "nervous laughter"}),
        ("text: funeral + sadness", {"q": "funeral", "emotion": "sadness"}),
        ("price $100–500 + training",
         {"price_min": 10_000, "price_max": 50_000, "use": "model_training"}),
        ("price ≤ $200 + fine-tune + commercial",
         {"price_max": 20_000, "use": ["fine_tuning", "commercial_deployment"]}),
        ("territory DE + 30–120 s", {"territory": "DE", "duration_min": 30, "duration_max": 120}),
        ("territory JP + video", {"territory": "JP", "media_kind": "video"}),
        ("sort price ↑", {"sort": "price_asc"}),
        ("pride, sort price ↓", {"emotion": "pride", "sort": "price_desc"}),
        ("fr, sort duration ↓", {"language": "fr", "sort": "duration_desc"}),
        ("genuine, sort intensity ↓", {"authenticity": "genuine", "sort": "intensity_desc"}),
        ("valence ≥ 0.5 + arousal ≤ 0.4", {"valence_min": 0.5, "arousal_max": 0.4}),
        ("deep page 200", {"page": 200}),
        ("one performer", {"performer": performer_id}),
        ("calm, 100 per page", {"emotion": "calm", "page_size": 100}),
    ]  # fmt: skip


# --- Hand-written SQL for the same searches -----------------------------------------------


def raw_sql(params: dict) -> tuple[str, list, str, list]:
    """(count SQL, params, page SQL, params): what a careful engineer writes by
    hand for the same search."""
    condition, args = _raw_condition(params)
    return _raw_count_and_page(params, condition, args)


# Everything a result shows of a listing's recordings, beside the listing's own
# columns: the page's contents, which the SQL column above does not read.
CONTENTS_SQL = (
    "SELECT li.listing_id, l.title, l.description, l.price_minor, l.currency, l.published_at, "
    "l.duration_days, l.permitted_uses, l.worldwide, l.territories, l.sublicensing_allowed, "
    "l.attribution_required, l.exclusivity, l.revenue_share_bps, l.revenue_threshold_minor, "
    "l.per_unit_rates, l.reuse_caps, p.id, p.stage_name, r.uid, r.title, r.language, "
    "r.duration_seconds, r.media_kind, r.preview, r.preview_status, s.primary_emotion, "
    "s.intensity, s.valence, s.arousal, s.authenticity, s.arc, s.action_units, "
    "s.vocal_events, s.annotator, s.description, s.tags, "
    "EXISTS (SELECT 1 FROM marketplace_catalogueentry e WHERE e.listing_id = li.listing_id "
    "AND e.recording_id = li.recording_id AND {condition}) "
    "FROM marketplace_listingitem li JOIN marketplace_listing l ON l.id = li.listing_id "
    "JOIN accounts_performerprofile p ON p.id = l.performer_id "
    "JOIN marketplace_recording r ON r.id = li.recording_id "
    "LEFT JOIN marketplace_emotionalsignature s ON s.recording_id = r.id "
    "WHERE li.listing_id = ANY(%s) ORDER BY li.listing_id, li.position, li.id"
)


def raw_contents_sql(params: dict) -> tuple[str, list]:
    """(SQL, params before the page's ids): the page's listings with their
    recordings, signatures and performer, and which recordings matched, in
    one hand-written statement; append the list of the page's ids to the
    params."""
    condition, args = _raw_condition(params)
    return CONTENTS_SQL.format(condition=condition), list(args)


def _raw_condition(params: dict) -> tuple[str, list]:
    def many(value):
        return value if isinstance(value, list) else [value]

    where, args = ["TRUE"], []
    if "emotion" in params:
        where.append("e.primary_emotion = ANY(%s)")
        args.append(many(params["emotion"]))
    if "authenticity" in params:
        where.append("e.authenticity = ANY(%s)")
        args.append(many(params["authenticity"]))
    for key, column, op in [
        ("intensity_min", "intensity", ">="), ("intensity_max", "intensity", "<="),
        ("valence_min", "valence", ">="), ("valence_max", "valence", "<="),
        ("arousal_min", "arousal", ">="), ("arousal_max", "arousal", "<="),
        ("duration_min", "duration_seconds", ">="), ("duration_max", "duration_seconds", "<="),
        ("price_min", "price_minor", ">="), ("price_max", "price_minor", "<="),
    ]:  # fmt: skip
        if key in params:
            where.append(f"e.{column} {op} %s")
            args.append(params[key])
    if "price_min" in params or "price_max" in params:
        where.append("e.currency = %s")
        args.append("USD")
    if "language" in params:
        where.append("(e.language = %s OR e.language LIKE %s)")
        args += [params["language"], params["language"] + "-%"]
    if "performer" in params:
        where.append("e.performer_id = %s")
        args.append(params["performer"])
    if "media_kind" in params:
        where.append("e.media_kind = %s")
        args.append(params["media_kind"])
    for use in many(params.get("use", [])):
        where.append(f"e.use_{use}")
    if "territory" in params:
        where.append("(e.worldwide OR e.territories LIKE %s)")
        args.append(f"%|{params['territory']}|%")
    if "q" in params:
        where.append("e.search_vector @@ websearch_to_tsquery('english'::regconfig, %s)")
        args.append(params["q"])
    return " AND ".join(where), args


def _raw_count_and_page(params: dict, condition: str, args: list) -> tuple[str, list, str, list]:
    size = int(params.get("page_size", 20))
    offset = (int(params.get("page", 1)) - 1) * size
    # The API counts exactly up to 1,000 listings and says "more than" beyond:
    # the same answer here, the plain way. (The SQL below is assembled from
    # constant fragments; every value is a bound parameter.)
    # (Ranking by relevance reads every match, so there the API counts exactly.)
    sort = params.get("sort") or ("relevance" if "q" in params else "newest")
    cap = "" if sort == "relevance" else " LIMIT 1001"
    count_sql = (
        f"SELECT count(*) FROM (SELECT DISTINCT e.listing_id FROM marketplace_catalogueentry e "  # noqa: S608
        f"WHERE {condition}{cap}) s"
    )
    order = {"newest": "l.published_at DESC, l.id DESC",
             "price_asc": "l.price_minor ASC, l.id DESC",
             "price_desc": "l.price_minor DESC, l.id DESC"}  # fmt: skip
    if sort in order:
        page_sql = (
            "SELECT l.id, l.title, l.price_minor, l.currency FROM marketplace_listing l "  # noqa: S608
            "WHERE l.status = 'published' AND EXISTS (SELECT 1 FROM marketplace_catalogueentry e "
            f"WHERE e.listing_id = l.id AND {condition}) ORDER BY {order[sort]} "
            "LIMIT %s OFFSET %s"
        )
        page_args = [*args, size, offset]
    else:
        key, direction, key_args = {
            "relevance": (
                "max(ts_rank(e.search_vector, websearch_to_tsquery('english'::regconfig, %s)))",
                "DESC",
                [params.get("q", "")],
            ),
            "duration_asc": ("min(e.duration_seconds)", "ASC", []),
            "duration_desc": ("max(e.duration_seconds)", "DESC", []),
            "intensity_desc": ("max(e.intensity)", "DESC", []),
        }[sort]
        page_sql = (
            f"SELECT l.id, l.title, l.price_minor, l.currency FROM (SELECT e.listing_id, {key} k "  # noqa: S608
            f"FROM marketplace_catalogueentry e WHERE {condition} GROUP BY e.listing_id "
            f"ORDER BY k {direction}, e.listing_id DESC LIMIT %s OFFSET %s) p "
            "JOIN marketplace_listing l ON l.id = p.listing_id "
            f"ORDER BY p.k {direction}, p.listing_id DESC"
        )
        page_args = [*key_args, *args, size, offset]
    return count_sql, args, page_sql, page_args


# --- Measuring ---------------------------------------------------------------------------------


def _percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    index = max(0, min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def measure(repeat: int, url: str, explain: bool) -> int:
    import psycopg
    from django.core.cache import cache
    from django.test import Client
    from psycopg.types.string import TextLoader

    from marketplace.models import CatalogueEntry

    client = Client()
    performer_id = (
        CatalogueEntry.objects.values("performer_id")
        .order_by("performer_id")
        .distinct()[10:11]
        .get()["performer_id"]
    )
    rows = []
    all_api, all_sql, all_full = [], [], []
    with psycopg.connect(_conninfo(url), autocommit=True) as raw:
        # JSON stays text, as the database sends it: the SQL columns time the
        # database and the wire, not decoding in Python.
        raw.adapters.register_loader("json", TextLoader)
        raw.adapters.register_loader("jsonb", TextLoader)
        for name, params in combos(performer_id):
            query = urlencode(params, doseq=True)
            path = "/api/v1/catalogue/" + (f"?{query}" if query else "")
            count_sql, count_args, page_sql, page_args = raw_sql(params)
            contents_sql, contents_args = raw_contents_sql(params)
            for _ in range(2):  # warm caches and plans
                response = client.get(path)
                raw.execute(count_sql, count_args).fetchone()
                page_ids = [r[0] for r in raw.execute(page_sql, page_args).fetchall()]
                raw.execute(contents_sql, [*contents_args, page_ids]).fetchall()
            if response.status_code != 200:
                print(f"{name}: HTTP {response.status_code} {response.content[:300]!r}")
                return 1
            api_count = response.json()["count"]
            sql_count = raw.execute(count_sql, count_args).fetchone()[0]
            sql_count = sql_count if "LIMIT 1001" not in count_sql else min(sql_count, 1000)
            api_ids = [r["id"] for r in response.json()["results"]]
            sql_ids = [r[0] for r in raw.execute(page_sql, page_args).fetchall()]
            if api_count != sql_count or api_ids != sql_ids:
                print(f"{name}: API and SQL disagree (count {api_count} vs {sql_count}, "
                      f"ids {api_ids[:5]} vs {sql_ids[:5]})")  # fmt: skip
                return 1
            # One run with the facet cache cleared: what the first search of
            # these filters costs after any change to the catalogue.
            cache.clear()
            start = time.perf_counter()
            client.get(path)
            cold = (time.perf_counter() - start) * 1000
            api_times, sql_times, full_times = [], [], []
            for _ in range(repeat):
                start = time.perf_counter()
                client.get(path)
                api_times.append((time.perf_counter() - start) * 1000)
                start = time.perf_counter()
                raw.execute(count_sql, count_args).fetchone()
                page_ids = [r[0] for r in raw.execute(page_sql, page_args).fetchall()]
                middle = time.perf_counter()
                raw.execute(contents_sql, [*contents_args, page_ids]).fetchall()
                end = time.perf_counter()
                sql_times.append((middle - start) * 1000)
                full_times.append((end - start) * 1000)
            all_api += api_times
            all_sql += sql_times
            all_full += full_times
            rows.append(
                (name, api_count, response.json()["count_exact"], api_times, sql_times,
                 full_times, cold)
            )  # fmt: skip
            if explain:
                plan = raw.execute("EXPLAIN ANALYZE " + page_sql, page_args).fetchall()
                print("\n".join(r[0] for r in plan))

    header = f"{'search':38} {'matches':>8} {'API p50':>8} {'API p95':>8} {'SQL p50':>8} " \
             f"{'SQL p95':>8} {'p95 ×':>6}   {'+rows p95':>9} {'×':>4} {'cold':>6}"  # fmt: skip
    print()
    print(header)
    print("-" * len(header))
    worst_p95, slowest = 0.0, ""
    over = []  # searches whose API p95 is more than 3× their SQL p95
    colds = []
    for name, count, exact, api_times, sql_times, full_times, cold in rows:
        a50, a95 = _percentile(api_times, 50), _percentile(api_times, 95)
        s50, s95 = _percentile(sql_times, 50), _percentile(sql_times, 95)
        f95 = _percentile(full_times, 95)
        ratio = a95 / s95 if s95 else float("inf")
        if a95 > worst_p95:
            worst_p95, slowest = a95, name
        if ratio > 3:
            over.append((ratio, name))
        colds.append(cold)
        shown = f"{count:,}" if exact else "1,000+"
        mark = " !" if ratio > 3 else "  "
        print(f"{name:38} {shown:>8} {a50:>8.1f} {a95:>8.1f} {s50:>8.1f} {s95:>8.1f} "
              f"{ratio:>6.1f}{mark} {f95:>9.1f} {a95 / f95:>4.1f} {cold:>6.0f}")  # fmt: skip
    print("-" * len(header))
    a50, a95 = _percentile(all_api, 50), _percentile(all_api, 95)
    s50, s95 = _percentile(all_sql, 50), _percentile(all_sql, 95)
    f95 = _percentile(all_full, 95)
    pooled, cold50 = a95 / s95, _percentile(colds, 50)
    print(f"{'whole mix':38} {'':>8} {a50:>8.1f} {a95:>8.1f} {s50:>8.1f} {s95:>8.1f} "
          f"{pooled:>6.1f}   {f95:>9.1f} {a95 / f95:>4.1f} {cold50:>6.0f}")  # fmt: skip
    print()
    print(f"""\
Times in ms over {repeat} runs per search, in process. SQL = count + one page of listing ids
and titles, hand-written, through psycopg. p95 × = API p95 / SQL p95 (! = over 3×).
+rows = the same SQL plus one hand-written statement for what the API shows of the page
(listings, performers, recordings, signatures, which recordings matched; JSON left as
text); × = API p95 / that.
cold = one API run with the facet cache cleared (whole mix: median); every other API run
reuses cached facet counts, as production does until the catalogue changes.""")  # fmt: skip
    pooled_met = a95 < 50 and pooled <= 3
    print(f"Target, whole mix (API p95 < 50 ms and within 3× of SQL p95): "
          f"{'met' if pooled_met else 'MISSED'} — API p95 {a95:.1f} ms, {pooled:.1f}× SQL; "
          f"slowest search {slowest!r}, p95 {worst_p95:.1f} ms.")  # fmt: skip
    worst = max(over) if over else None
    print(f"Target, per search (each API p95 within 3× of its own SQL p95): "
          f"{'met' if not over else 'MISSED'} — {len(rows) - len(over)} of {len(rows)} within "
          f"3×" + (f"; worst {worst[1]!r}, {worst[0]:.1f}×." if worst else ".")
          + f" Cold facets: median {_percentile(colds, 50):.0f} ms, "
          f"slowest {max(colds):.0f} ms.")  # fmt: skip
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recordings", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20, help="runs per search (default 20)")
    parser.add_argument("--reuse", action="store_true", help="keep a load of the same size")
    parser.add_argument("--drop", action="store_true", help="drop the database at the end")
    parser.add_argument("--explain", action="store_true", help="print each page query's plan")
    args = parser.parse_args()

    url = _database_url()
    ensure_database(url)
    import django

    django.setup()
    from django.core.management import call_command

    from marketplace.models import Recording

    call_command("migrate", verbosity=0)
    if args.reuse and Recording.objects.count() == args.recordings:
        print(f"Reusing the {args.recordings:,} recordings already loaded.")
    else:
        started = time.perf_counter()
        load(args.recordings)
        print(f"Loaded {args.recordings:,} recordings in {time.perf_counter() - started:.0f} s.")
    from marketplace.models import CatalogueEntry, Listing

    print(f"{Listing.objects.filter(status='published').count():,} published listings, "
          f"{CatalogueEntry.objects.count():,} catalogue rows.")  # fmt: skip
    status = measure(args.repeat, url, args.explain)
    if args.drop:
        drop_database(url)
    return status


if __name__ == "__main__":
    sys.exit(main())
