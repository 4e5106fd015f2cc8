"""The life of a license after sale: scheduled renewals start, reminders go
out 30 and 7 days before the end, licenses expire and a deletion attestation
is requested. ``licenses_lifecycle_run`` is idempotent: run it every few
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

REMINDERS = ((30, "reminder_30_sent_at"), (7, "reminder_7_sent_at"))


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

    for days, field_name in REMINDERS:
        due = License.objects.filter(
            status=License.Status.ACTIVE,
            ends_at__gt=now,
            ends_at__lte=now + timedelta(days=days),
            **{f"{field_name}__isnull": True},
        ).select_related("organization")
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

    for license in License.objects.filter(
        status=License.Status.ACTIVE, ends_at__lte=now
    ).select_related("organization"):
        with transaction.atomic():
            if not License.objects.filter(pk=license.pk, status=License.Status.ACTIVE).update(
                status=License.Status.EXPIRED,
                status_reason="The license term ended.",
                updated_at=now,
            ):
                continue
            audit_record(action="license.expired", target=license)
            report.expired.append(license.uid)
            renewed = License.objects.filter(renewed_from=license).exclude(
                status__in=[License.Status.REVOKED, License.Status.SUSPENDED]
            )
            if not renewed.exists():
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
