"""The life of a license after sale: scheduled renewals start, reminders go
out 30 and 7 days before the end (only the nearest notice that is due, and
none once the license is renewed), licenses expire — suspended ones too — and
a deletion attestation is requested. ``licenses_lifecycle_run`` is idempotent: run it every few
minutes (beat) or by hand (``manage.py expire_licenses``), as often as you
like, from several processes at once; each step is a conditional update, so
each reminder is sent and each expiry happens exactly once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from core.errors import Conflict, ValidationError
from core.services import audit_record, client_ip
from licensing.models import DeletionAttestation, License
from licensing.notifications import organization_emails

# (days before the end, field marking it sent, the next notice's days): a
# notice is due while the end is within its days but not yet within the next
# notice's, so a license first seen 5 days before its end gets only the 7-day one.
REMINDERS = ((30, "reminder_30_sent_at", 7), (7, "reminder_7_sent_at", 0))
# A renewal that will carry the files on: its holder needs no "renew" notice
# and no deletion request.
RENEWAL_IN_FORCE = (License.Status.SCHEDULED, License.Status.ACTIVE, License.Status.EXPIRED)


@dataclass
class LifecycleReport:
    started: list[str] = field(default_factory=list)
    reminded: list[tuple[str, int]] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    attestations_overdue: int = 0

    def summary(self) -> str:
        return (
            f"{len(self.started)} renewal(s) started, {len(self.reminded)} reminder(s) sent, "
            f"{len(self.expired)} license(s) expired, "
            f"{self.attestations_overdue} attestation(s) overdue"
        )


def _send(license: License, subject: str, template: str, context: dict) -> None:
    body = render_to_string(
        template,
        {
            "license": license,
            "organization": license.organization,
            "site_url": settings.SITE_URL,
            "license_url": settings.SITE_URL
            + reverse("buyer_license_detail", args=[license.organization.slug, license.uid]),
            **context,
        },
    )
    recipients = organization_emails(license.organization)
    transaction.on_commit(lambda: send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients))


def licenses_lifecycle_run(
    *, now: datetime | None = None, progress: Callable[[str, int], None] | None = None
) -> LifecycleReport:
    now = now or timezone.now()
    report = LifecycleReport()

    for license in License.objects.filter(status=License.Status.SCHEDULED, starts_at__lte=now):
        with transaction.atomic():
            if License.objects.filter(pk=license.pk, status=License.Status.SCHEDULED).update(
                status=License.Status.ACTIVE, updated_at=now
            ):
                audit_record(action="license.started", target=license, data={"renewal": True})
                report.started.append(license.uid)
    if progress:
        progress("started", len(report.started))

    for days, field_name, next_days in REMINDERS:
        due = (
            License.objects.filter(
                status=License.Status.ACTIVE,
                ends_at__gt=now + timedelta(days=next_days),
                ends_at__lte=now + timedelta(days=days),
                **{f"{field_name}__isnull": True},
            )
            .exclude(renewed_by__status__in=RENEWAL_IN_FORCE)
            .select_related("organization")
        )
        for license in due:
            with transaction.atomic():
                claimed = License.objects.filter(
                    pk=license.pk, **{f"{field_name}__isnull": True}
                ).update(**{field_name: now})
                if not claimed:
                    continue
                days_left = max(0, (license.ends_at - now).days)
                _send(
                    license,
                    f"License {license.uid} ends in {days_left} days",
                    "licensing/email/reminder.txt",
                    {"days_left": days_left},
                )
                audit_record(action=f"license.reminder_{days}", target=license)
                report.reminded.append((license.uid, days))
    if progress:
        progress("reminded", len(report.reminded))

    # Active licenses end; so do suspended ones (refunded or disputed): a
    # suspension holds downloads while the term runs, it does not outlive it.
    for license in License.objects.filter(
        status__in=[License.Status.ACTIVE, License.Status.SUSPENDED], ends_at__lte=now
    ).select_related("organization"):
        with transaction.atomic():
            was = license.status
            reason = "The license term ended."
            if was == License.Status.SUSPENDED:
                reason = f"The license term ended while it was suspended ({license.status_reason})"
            if not License.objects.filter(pk=license.pk, status=was).update(
                status=License.Status.EXPIRED, status_reason=reason, updated_at=now
            ):
                continue
            audit_record(
                action="license.expired",
                target=license,
                data={"from": was},
            )
            report.expired.append(license.uid)
            renewed = License.objects.filter(
                renewed_from=license, status__in=RENEWAL_IN_FORCE
            ).exists()
            if not renewed:
                attestation_request(license=license, reason="expired", now=now)
    if progress:
        progress("expired", len(report.expired))

    report.attestations_overdue = DeletionAttestation.objects.filter(
        status=DeletionAttestation.Status.REQUESTED, due_at__lt=now
    ).count()
    return report


def attestation_request(
    *, license: License, reason: str, now: datetime | None = None
) -> DeletionAttestation:
    now = now or timezone.now()
    attestation, created = DeletionAttestation.objects.get_or_create(
        license=license,
        defaults={
            "reason": reason,
            "requested_at": now,
            "due_at": now + timedelta(days=settings.DELETION_ATTESTATION_DAYS),
        },
    )
    if created:
        audit_record(action="attestation.requested", target=license, data={"reason": reason})
        _send(
            license,
            f"Please confirm deletion of the files licensed under {license.uid}",
            "licensing/email/attestation_requested.txt",
            {"attestation": attestation},
        )
    return attestation


def attestation_supersede(*, license: License, renewal: License) -> DeletionAttestation | None:
    """A renewal licenses the files again: an open deletion request of the
    license it renews is no longer due. Call inside the renewal's transaction."""
    attestation = (
        DeletionAttestation.objects.select_for_update()
        .filter(license=license, status=DeletionAttestation.Status.REQUESTED)
        .first()
    )
    if attestation is None:
        return None
    attestation.status = DeletionAttestation.Status.SUPERSEDED
    attestation.save(update_fields=["status"])
    audit_record(
        action="attestation.superseded",
        target=license,
        data={"renewal": renewal.uid, "reason": attestation.reason},
    )
    return attestation


@transaction.atomic
def attestation_submit(
    *,
    license: License,
    by: User,
    signer_name: str,
    signer_title: str,
    statement: str,
    systems: str,
    api_key=None,
    request: HttpRequest | None = None,
) -> DeletionAttestation:
    attestation = DeletionAttestation.objects.select_for_update().filter(license=license).first()
    if attestation is None:
        raise Conflict(
            "No deletion attestation is due for this license (it has not ended).",
            code="attestation_not_requested",
        )
    if attestation.status == DeletionAttestation.Status.SUBMITTED:
        raise Conflict(
            "Deletion was already attested for this license.", code="attestation_already_submitted"
        )
    if attestation.status == DeletionAttestation.Status.SUPERSEDED:
        raise Conflict(
            "No deletion attestation is due: a renewal licenses these files again.",
            code="attestation_superseded",
        )
    errors = {}
    if len(" ".join(signer_name.split())) < 3:
        errors["signer_name"] = ["Type the full name of the person attesting."]
    if len(statement.strip()) < 20:
        errors["statement"] = ["Say what was deleted (at least 20 characters)."]
    if errors:
        raise ValidationError(
            "Some fields are not valid: " + "; ".join(f"{k}: {v[0]}" for k, v in errors.items()),
            details={"fields": errors},
        )
    attestation.status = DeletionAttestation.Status.SUBMITTED
    attestation.submitted_at = timezone.now()
    attestation.submitted_by = by
    attestation.signer_name = " ".join(signer_name.split())
    attestation.signer_title = signer_title.strip()[:200]
    attestation.statement = statement.strip()[:5000]
    attestation.systems = systems.strip()[:5000]
    attestation.ip_address = client_ip(request)
    attestation.save()
    audit_record(
        action="attestation.submitted",
        actor=by,
        target=license,
        request=request,
        api_key=api_key,
        data={"signer": attestation.signer_name},
    )
    return attestation
