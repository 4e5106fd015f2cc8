"""Demo market for a first look: the demo performers' takes (synthesised
voice-like audio, made here, so no third-party recording ships with the
demo), described, consented and listed, approved by the demo staff user;
Lumen Labs holding one license bought through the simulated gateway, with
some reported usage tallied into royalties.

Run after ``seed_demo``. Safe to run again: takes, listings, the purchase
and the usage are found by their titles and event ids, not made twice."""

from __future__ import annotations

import io
import wave
from datetime import date, timedelta

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from accounts.models import Organization, PerformerProfile, User
from licensing.models import License
from licensing.services import checkout_start
from marketplace import services
from marketplace.models import Listing, Recording
from marketplace.services import ListingTerms, consent_text_current
from marketplace.services.recordings import recording_create, recording_preview_build
from royalties.invoicing import royalty_invoices_run
from royalties.sales import checkout_completed
from royalties.tally import tally_usage
from royalties.usage import usage_events_ingest

RATE = 22_050

# Voice-like character per emotion: mean pitch (Hz), pitch swing, syllables
# per second, breathiness (0..1) and loudness (0..1).
VOICE = {
    "grief": (180, 25, 2.2, 0.35, 0.45),
    "amusement": (240, 60, 5.0, 0.15, 0.75),
    "tenderness": (200, 20, 3.0, 0.25, 0.40),
    "anger": (160, 70, 5.5, 0.10, 0.95),
    "fear": (260, 80, 6.0, 0.30, 0.80),
    "joy": (230, 65, 4.5, 0.10, 0.85),
    "sadness": (190, 15, 2.5, 0.30, 0.35),
    "shame": (175, 12, 2.8, 0.20, 0.30),
    "calm": (170, 10, 3.0, 0.15, 0.40),
}

TAKES = {
    "maya@demo.residuals.local": [
        {
            "title": "Hospital corridor, after the news",
            "emotion": "grief",
            "intensity": 5,
            "authenticity": "genuine",
            "valence": -0.9,
            "arousal": 0.55,
            "seconds": 9.0,
            "vocal_events": ["sob", "tremor"],
            "sensitive": ["grief"],
            "tags": ["hospital", "loss", "improv"],
            "description": "A daughter hears that her father did not survive surgery. "
            "Disbelief gives way to open sobbing.",
            "arc": [
                (0.0, 3.0, "confusion", 2, "Hears the words, does not take them in"),
                (3.0, 6.5, "grief", 4, "It lands"),
                (6.5, 9.0, "grief", 5, "Sobbing, trying to speak"),
            ],
        },
        {
            "title": "Laughing through it",
            "emotion": "amusement",
            "intensity": 3,
            "authenticity": "masked",
            "valence": 0.2,
            "arousal": 0.6,
            "seconds": 7.0,
            "vocal_events": ["laugh", "sigh"],
            "sensitive": [],
            "tags": ["laughter", "coping"],
            "description": "Telling a funny story at a wake; the laughter hides sadness.",
            "arc": [
                (0.0, 4.0, "amusement", 3, "The story"),
                (4.0, 7.0, "sadness", 2, "The laugh fades"),
            ],
        },
        {
            "title": "Letter to my brother",
            "emotion": "tenderness",
            "intensity": 3,
            "authenticity": "genuine",
            "valence": 0.6,
            "arousal": 0.3,
            "seconds": 8.0,
            "vocal_events": ["sigh"],
            "sensitive": [],
            "tags": ["letter", "family"],
            "description": "Reading aloud a letter to a younger brother leaving home.",
            "arc": [],
        },
    ],
    "diego@demo.residuals.local": [
        {
            "title": "Road rage, driver's seat",
            "emotion": "anger",
            "intensity": 5,
            "authenticity": "exaggerated",
            "valence": -0.8,
            "arousal": 0.95,
            "seconds": 6.0,
            "vocal_events": ["scream"],
            "sensitive": ["rage"],
            "tags": ["car", "shouting", "spanish"],
            "description": "Cut off at a junction; escalating shouting in Spanish.",
            "language": "es",
            "arc": [
                (0.0, 2.0, "frustration", 3, "Horn, first words"),
                (2.0, 6.0, "anger", 5, "Full shout"),
            ],
        },
        {
            "title": "Stuck in the lift",
            "emotion": "fear",
            "intensity": 4,
            "authenticity": "genuine",
            "valence": -0.7,
            "arousal": 0.85,
            "seconds": 7.5,
            "vocal_events": ["gasp", "tremor"],
            "sensitive": ["distress"],
            "tags": ["panic", "claustrophobia"],
            "description": "The lift stops between floors and the lights go out.",
            "arc": [
                (0.0, 2.5, "surprise", 3, "The jolt"),
                (2.5, 7.5, "fear", 4, "Breathing faster, calling for help"),
            ],
        },
        {
            "title": "Last-minute winner",
            "emotion": "joy",
            "intensity": 5,
            "authenticity": "genuine",
            "valence": 0.95,
            "arousal": 0.9,
            "seconds": 5.0,
            "vocal_events": ["laugh", "scream"],
            "sensitive": [],
            "tags": ["football", "celebration"],
            "description": "Commentating the winning goal in stoppage time.",
            "arc": [],
        },
    ],
    "june@demo.residuals.local": [
        {
            "title": "Holding it together",
            "emotion": "sadness",
            "intensity": 3,
            "authenticity": "suppressed",
            "valence": -0.6,
            "arousal": 0.35,
            "seconds": 8.0,
            "vocal_events": ["tremor"],
            "sensitive": [],
            "tags": ["restraint", "screen"],
            "description": "Saying goodbye at a station without letting the voice break.",
            "arc": [
                (0.0, 5.0, "calm", 2, "Steady on the surface"),
                (5.0, 8.0, "sadness", 4, "The voice nearly breaks"),
            ],
        },
        {
            "title": "The apology",
            "emotion": "shame",
            "intensity": 4,
            "authenticity": "genuine",
            "valence": -0.7,
            "arousal": 0.4,
            "seconds": 6.5,
            "vocal_events": ["sigh"],
            "sensitive": [],
            "tags": ["apology", "workplace"],
            "description": "Apologising to a colleague for taking credit for their work.",
            "arc": [],
        },
        {
            "title": "Before the call",
            "emotion": "calm",
            "intensity": 2,
            "authenticity": "forced",
            "valence": 0.1,
            "arousal": 0.2,
            "seconds": 6.0,
            "vocal_events": [],
            "sensitive": [],
            "tags": ["breathing", "nerves"],
            "description": "Talking oneself into calm before a difficult phone call.",
            "arc": [],
        },
    ],
}

LISTINGS = [
    {
        "performer": "maya@demo.residuals.local",
        "title": "Grief and coping: three improvised scenes",
        "takes": [t["title"] for t in TAKES["maya@demo.residuals.local"]],
        "price_minor": 120_000,
        "uses": ["model_training", "evaluation", "commercial_deployment"],
        "per_unit_rates": {
            "training_run": {"amount_minor": 2_500, "per": 1},
            "inference_calls": {"amount_minor": 40, "per": 1_000},
        },
        "reuse_caps": {"max_models_trained": 3},
        "description": "Bereavement, laughter that hides sadness, and tenderness: three "
        "improvised scenes by one performer, with arcs annotated by her.",
    },
    {
        "performer": "diego@demo.residuals.local",
        "title": "High arousal: rage, panic and triumph",
        "takes": [t["title"] for t in TAKES["diego@demo.residuals.local"]],
        "price_minor": 90_000,
        "uses": ["model_training", "evaluation", "fine_tuning"],
        "per_unit_rates": {"fine_tune_run": {"amount_minor": 1_500, "per": 1}},
        "description": "Three loud, fast takes in Spanish and English.",
    },
    {
        "performer": "june@demo.residuals.local",
        "title": "Holding it together",
        "takes": ["Holding it together"],
        "price_minor": 45_000,
        "uses": ["model_training", "evaluation"],
        "per_unit_rates": {},
        "description": "Suppressed sadness: the moment before someone cries.",
    },
]

BUYER_ORGANIZATION = "Lumen Labs"
BOUGHT_LISTING = LISTINGS[0]["title"]


def voice_like_wav(emotion: str, seconds: float, seed: int) -> bytes:
    """A synthetic, voice-like mono WAV: a harmonic source on a wandering
    pitch, shaped into syllables, with a little breath noise."""
    pitch, swing, syllables, breath, loudness = VOICE[emotion]
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    wander = np.cumsum(rng.normal(0, 1, t.size)) / np.sqrt(RATE)
    f0 = pitch + swing * np.sin(2 * np.pi * 0.4 * t) + 8 * wander
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    # Harmonics falling off like a voice, with two formant-like bumps.
    source = sum(
        (1 / k) * (1.6 if k in (3, 4) else 1.0) * (1.3 if k in (9, 10) else 1.0) * np.sin(k * phase)
        for k in range(1, 14)
    )
    envelope = np.clip(np.sin(np.pi * syllables * t) ** 2, 0, 1) ** 0.6
    envelope *= np.clip(t / 0.2, 0, 1) * np.clip((seconds - t) / 0.3, 0, 1)
    signal = envelope * (source / 3 + breath * rng.normal(0, 0.3, t.size))
    signal = loudness * 0.8 * signal / max(1e-9, np.abs(signal).max())
    pcm = (signal * 32_000).astype("<i2").tobytes()
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(pcm)
    return buffer.getvalue()


class Command(BaseCommand):
    help = "Load demo recordings, listings, a license and usage (idempotent; after seed_demo)."

    def handle(self, *args, **options):
        if settings.PRODUCTION:
            raise CommandError("seed_demo_market refuses to run in production.")
        staff = User.objects.filter(email="staff@demo.residuals.local").first()
        if staff is None:
            raise CommandError("Run `manage.py seed_demo` first: the demo users are missing.")
        recordings = {}
        for email, takes in TAKES.items():
            performer = PerformerProfile.objects.get(user__email=email)
            for number, take in enumerate(takes):
                with transaction.atomic():
                    recordings[take["title"]] = self._take(
                        performer, take, seed=number * 7 + len(email)
                    )
        for spec in LISTINGS:
            self._listing(spec, recordings, staff)
        license = self._purchase()
        if license is not None:
            self._usage(license)
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo market is loaded: {len(recordings)} takes, {len(LISTINGS)} listings, "
                f"and {BUYER_ORGANIZATION} holds a license with reported usage."
            )
        )

    def _take(self, performer: PerformerProfile, take: dict, *, seed: int) -> Recording:
        existing = Recording.objects.filter(performer=performer, title=take["title"]).first()
        if existing is not None:
            return existing
        user = performer.user
        data = voice_like_wav(take["emotion"], take["seconds"], seed)
        slug = take["title"].lower().replace(" ", "-").replace(",", "").replace("'", "")
        recording = recording_create(
            performer=performer,
            by=user,
            file=ContentFile(data, name=f"{slug}.wav"),
            original_filename=f"{slug}.wav",
            title=take["title"],
            language=take.get("language", "en"),
        )
        services.provenance_save(
            recording=recording,
            by=user,
            performer_name=performer.legal_name,
            performer_contact=performer.contact_email,
            recording_date=date(2026, 9, 14),
            session_name="Residuals demo session",
            studio="Studio 2, Hackney",
            annotator=performer.legal_name,
        )
        services.consent_give(
            recording=recording,
            by=user,
            allowed_uses=[
                "model_training",
                "evaluation",
                "fine_tuning",
                "commercial_deployment",
            ],
            sensitive_content=take["sensitive"],
            sensitive_content_licensable=bool(take["sensitive"]),
            signature_name=performer.legal_name,
            consent_text_version=consent_text_current().version,
            ip_address="127.0.0.1",
        )
        services.signature_save(
            recording=recording,
            by=user,
            primary_emotion=take["emotion"],
            intensity=take["intensity"],
            valence=take["valence"],
            arousal=take["arousal"],
            authenticity=take["authenticity"],
            arc=[
                {"start": s, "end": e, "emotion": emo, "intensity": i, "note": note}
                for s, e, emo, i, note in take["arc"]
            ],
            vocal_events=take["vocal_events"],
            description=take["description"],
            tags=take["tags"],
        )
        # Build the preview now, so the catalogue plays it even before the
        # worker starts (the queued task finds it built and does nothing).
        recording_preview_build(recording)
        return recording

    def _listing(self, spec: dict, recordings: dict, staff: User) -> Listing:
        performer = PerformerProfile.objects.get(user__email=spec["performer"])
        listing = Listing.objects.filter(performer=performer, title=spec["title"]).first()
        if listing is None:
            listing = services.listing_create(
                performer=performer,
                by=performer.user,
                recording_ids=[recordings[title].pk for title in spec["takes"]],
                terms=ListingTerms(
                    title=spec["title"],
                    description=spec["description"],
                    price_minor=spec["price_minor"],
                    permitted_uses=spec["uses"],
                    per_unit_rates=spec["per_unit_rates"] or None,
                    reuse_caps=spec.get("reuse_caps"),
                ),
            )
        if listing.status == Listing.Status.DRAFT:
            services.listing_submit(listing=listing, by=performer.user)
            listing.refresh_from_db()
        if listing.status == Listing.Status.IN_REVIEW:
            services.listing_review(listing=listing, by=staff, approve=True)
            listing.refresh_from_db()
        return listing

    def _purchase(self) -> License | None:
        organization = Organization.objects.filter(name=BUYER_ORGANIZATION).first()
        if organization is None:
            return None
        listing = Listing.objects.get(title=BOUGHT_LISTING)
        license = License.objects.filter(
            organization=organization, order_line__listing=listing
        ).first()
        if license is not None:
            return license
        owner = organization.memberships.filter(role="owner").first().user
        started = checkout_start(
            organization=organization,
            user=owner,
            listings=[listing],
            success_url=settings.SITE_URL + "/orgs/{order}/",
            cancel_url=settings.SITE_URL + "/orgs/{order}/",
        )
        checkout_completed(
            session_id=started.order.checkout_session_id,
            payment_status="paid",
            payment_intent=f"pi_demo_{started.order.number}",
        )
        return License.objects.filter(order_line__order=started.order).first()

    def _usage(self, license: License) -> None:
        now = timezone.now()
        start = max(license.starts_at, now - timedelta(minutes=30))
        events = [
            {"event_id": "demo-train-1", "metric": "training_run", "quantity": 1},
            {"event_id": "demo-train-2", "metric": "training_run", "quantity": 1},
            {"event_id": "demo-eval-1", "metric": "evaluation_run", "quantity": 3},
            {"event_id": "demo-infer-1", "metric": "inference_calls", "quantity": 250_000},
            {
                "event_id": "demo-revenue-1",
                "metric": "downstream_revenue",
                "quantity": 0,
                "amount_minor": 1_450_000,
                "currency": license.terms.get("currency", "USD"),
            },
        ]
        for minutes, event in enumerate(events):
            event["license"] = license.uid
            event["occurred_at"] = (start + timedelta(minutes=minutes)).isoformat()
            event["model"] = "lumen-empathy-v2"
        usage_events_ingest(organization_id=license.organization_id, events=events)
        tally_usage()
        # This month's royalties invoiced (the simulated gateway pays at once,
        # so they become available), then more revenue reported and tallied,
        # which stays pending until next month's invoice: both balances show.
        royalty_invoices_run(period=timezone.localdate())
        later = {
            "event_id": "demo-revenue-2",
            "license": license.uid,
            "metric": "downstream_revenue",
            "amount_minor": 320_000,
            "currency": license.terms.get("currency", "USD"),
            "occurred_at": (start + timedelta(minutes=len(events))).isoformat(),
            "model": "lumen-empathy-v2",
        }
        usage_events_ingest(organization_id=license.organization_id, events=[later])
        tally_usage()
