"""Demo data for a first look: performers, a buyer organization with an
owner and a member, and a staff user. Safe to run again: it finds what it
made before instead of making it twice."""

from __future__ import annotations

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts import services
from accounts.models import Membership, Organization, PerformerProfile, User

DEMO_PASSWORD = "demo-residuals-2026"  # noqa: S105 (local demo only; refused in production)

PERFORMERS = [
    {
        "email": "maya@demo.residuals.local",
        "full_name": "Maya Okafor",
        "stage_name": "Maya Okafor",
        "legal_name": "Maya Adaeze Okafor",
        "country": "GB",
        "jurisdiction": "England",
        "bio": "Improv and stage actor. Eight years of long-form improv; grief and tenderness "
        "scenes are my specialty.",
    },
    {
        "email": "diego@demo.residuals.local",
        "full_name": "Diego Ramírez",
        "stage_name": "Diego Ramírez",
        "legal_name": "Diego Alejandro Ramírez Soto",
        "country": "MX",
        "jurisdiction": "Ciudad de México",
        "bio": "Voice actor for animation and games, in Spanish and English. Big range: rage, "
        "panic, laughter.",
    },
    {
        "email": "june@demo.residuals.local",
        "full_name": "June Park",
        "stage_name": "June Park",
        "legal_name": "Park Ji-eun",
        "country": "US",
        "jurisdiction": "California",
        "bio": "Screen actor. Subtle, suppressed emotion: the moment before someone cries.",
    },
]

BUYER_OWNER = {"email": "ana@demo-lumen.example", "full_name": "Ana Lindqvist"}
BUYER_MEMBER = {"email": "sam@demo-lumen.example", "full_name": "Sam Whitfield"}
STAFF = {"email": "staff@demo.residuals.local", "full_name": "Rosa Admin"}
ORGANIZATION = {
    "name": "Lumen Labs",
    "country": "SE",
    "billing_email": "billing@demo-lumen.example",
    "intended_use": "Training and evaluating an empathetic voice assistant that recognises "
    "distress in callers to mental-health helplines. No synthetic voice cloning.",
}


def _user(email: str, full_name: str, *, is_staff: bool = False) -> User:
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        user = services.user_create(
            email=email, password=DEMO_PASSWORD, full_name=full_name, is_staff=is_staff
        )
    else:
        # Reset what a demo session may have changed, so the printed logins work.
        user.set_password(DEMO_PASSWORD)
        user.is_active = True
        user.is_staff = is_staff
        user.save(update_fields=["password", "is_active", "is_staff"])
    EmailAddress.objects.update_or_create(
        user=user, email=user.email, defaults={"verified": True, "primary": True}
    )
    return user


class Command(BaseCommand):
    help = "Load demo performers, a buyer organization and a staff user (idempotent)."

    def handle(self, *args, **options):
        if settings.PRODUCTION:
            raise CommandError("seed_demo refuses to run in production.")
        with transaction.atomic():
            for spec in PERFORMERS:
                user = _user(spec["email"], spec["full_name"])
                if not PerformerProfile.objects.filter(user=user).exists():
                    services.performer_profile_save(
                        user=user,
                        stage_name=spec["stage_name"],
                        legal_name=spec["legal_name"],
                        contact_email=spec["email"],
                        country=spec["country"],
                        jurisdiction=spec["jurisdiction"],
                        bio=spec["bio"],
                    )
            owner = _user(**BUYER_OWNER)
            member = _user(**BUYER_MEMBER)
            organization = Organization.objects.filter(name=ORGANIZATION["name"]).first()
            if organization is None:
                organization = services.organization_create(creator=owner, **ORGANIZATION)
            Membership.objects.update_or_create(
                organization=organization, user=owner, defaults={"role": Membership.Role.OWNER}
            )
            Membership.objects.update_or_create(
                organization=organization, user=member, defaults={"role": Membership.Role.MEMBER}
            )
            staff = _user(**STAFF, is_staff=True)
            if not staff.is_superuser:
                staff.is_superuser = True
                staff.save(update_fields=["is_superuser"])

        rows = [(p["email"], "performer") for p in PERFORMERS]
        rows += [
            (BUYER_OWNER["email"], f"buyer, owner of {ORGANIZATION['name']}"),
            (BUYER_MEMBER["email"], f"buyer, member of {ORGANIZATION['name']}"),
            (STAFF["email"], "staff (sets up two-factor authentication on first visit)"),
        ]
        self.stdout.write(
            self.style.SUCCESS("Demo data is loaded. Sign in at /accounts/login/ as:")
        )
        width = max(len(email) for email, _ in rows)
        for email, role in rows:
            self.stdout.write(f"  {email.ljust(width)}  {role}")
        self.stdout.write(f"Every demo login uses the password: {DEMO_PASSWORD}")
