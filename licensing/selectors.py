"""Reads for licensing, and the rules for who may see a license."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from accounts.selectors import Principal
from licensing.models import DeletionAttestation, License, Order


def license_is_usable(license: License, at: datetime | None = None) -> bool:
    """Files leave the platform only under a license that is active now."""
    at = at or timezone.now()
    return license.status == License.Status.ACTIVE and license.starts_at <= at < license.ends_at


def licenses_for_organization(organization_id: int) -> QuerySet[License]:
    return (
        License.objects.filter(organization_id=organization_id)
        .select_related("listing", "order_line__order")
        .order_by("-created_at", "-id")
    )


def license_for(principal: Principal, license_ref: str | int) -> License:
    """The license if the caller's organization holds it; 404 otherwise, so
    another organization's license ids reveal nothing."""
    lookup = {"uid": license_ref} if str(license_ref).startswith("LIC-") else {"pk": license_ref}
    try:
        license = License.objects.select_related("organization", "listing").get(**lookup)
    except (License.DoesNotExist, ValueError):
        raise Http404("No such license.") from None
    if not principal.can_act_for(license.organization_id):
        raise Http404("No such license.")
    return license


def orders_for_organization(organization_id: int) -> QuerySet[Order]:
    return Order.objects.filter(organization_id=organization_id).prefetch_related("lines")


def attestations_due(organization_id: int) -> QuerySet[DeletionAttestation]:
    return DeletionAttestation.objects.filter(
        license__organization_id=organization_id, status=DeletionAttestation.Status.REQUESTED
    ).select_related("license")


def attestations_overdue(at: datetime | None = None) -> QuerySet[DeletionAttestation]:
    return DeletionAttestation.objects.filter(
        status=DeletionAttestation.Status.REQUESTED, due_at__lt=at or timezone.now()
    ).select_related("license__organization")
