"""Helpers shared by the catalogue-side tests (consent, signatures, listings,
review, recording pages, admin): people in each role and an MFA session for
staff."""

from __future__ import annotations

from allauth.mfa.models import Authenticator

from marketplace import services
from marketplace.models import (
    CatalogueEntry,
    ConsentEvent,
    ConsentRecord,
    EmotionalSignature,
    Listing,
    ListingItem,
    Provenance,
    RecordingSplit,
)
from tests.factories import make_performer, make_user

TOTP_SECRET = "JBSWY3DPEHPK3PXP"


def give_mfa_session(client, user) -> None:
    """Sign the user in with a session that has passed a second factor, as
    allauth records it after a TOTP code (see tests/test_access_matrix.py)."""
    Authenticator.objects.get_or_create(
        user=user, type=Authenticator.Type.TOTP, defaults={"data": {"secret": TOTP_SECRET}}
    )
    client.force_login(user)
    session = client.session
    session["account_authentication_methods"] = [{"method": "mfa", "at": 0}]
    session["account_authentication_methods_user"] = str(user.pk)
    session.save()


def make_staff(email: str = "reviewer@residuals.example", *, superuser: bool = False):
    user = make_user(email=email, full_name="Rita Reviewer", is_staff=True)
    if superuser:
        user.is_superuser = True
        user.save(update_fields=["is_superuser"])
    return user


def make_other_performer(email: str = "other@example.com"):
    return make_performer(email=email, stage_name="Other Player", legal_name="Otto Other")


def consent_for(recording, **overrides):
    performer = recording.performer
    values = {
        "recording": recording,
        "by": performer.user,
        "allowed_uses": ["model_training", "evaluation"],
        "sensitive_content": [],
        "sensitive_content_licensable": False,
        "signature_name": performer.legal_name,
        "consent_text_version": services.consent_text_current().version,
        "ip_address": "198.51.100.4",
    }
    values.update(overrides)
    return services.consent_give(**values)


def catalogue_snapshot() -> dict:
    """Everything a refused write must leave untouched."""
    return {
        "signatures": list(EmotionalSignature.objects.order_by("pk").values()),
        "consents": list(ConsentRecord.objects.order_by("pk").values()),
        "events": ConsentEvent.objects.count(),
        "provenance": list(Provenance.objects.order_by("pk").values()),
        "splits": list(RecordingSplit.objects.order_by("pk").values()),
        "listings": list(Listing.objects.order_by("pk").values()),
        "items": list(ListingItem.objects.order_by("pk").values()),
        "catalogue": CatalogueEntry.objects.count(),
    }
