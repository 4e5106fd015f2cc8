"""Writes for licensing: the cart, checkout, fulfilment of paid orders into
licenses, suspension and revocation.

Money is posted to the ledger by royalties.sales, which calls the functions
here inside its own transaction (dependencies point one way: royalties
builds on licensing, never the reverse).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import Membership, Organization, User
from core.errors import ApplicationError, Conflict, NotFound, PermissionDenied, ValidationError
from core.payments import CheckoutLine, GatewayError, get_gateway
from core.services import audit_record
from licensing.lifecycle import attestation_supersede
from licensing.models import CartItem, License, LicenseItem, Order, OrderLine
from marketplace.models import Listing, ListingItem, RecordingSplit
from marketplace.services import listing_problems

TERMS_FIELDS = (
    "duration_days",
    "permitted_uses",
    "worldwide",
    "territories",
    "sublicensing_allowed",
    "attribution_required",
    "exclusivity",
    "revenue_share_bps",
    "revenue_threshold_minor",
    "per_unit_rates",
    "reuse_caps",
)


def require_member(*, organization: Organization, user: User) -> Membership:
    membership = Membership.objects.filter(organization=organization, user=user).first()
    if membership is None:
        raise NotFound("No such organization.")
    return membership


def listing_unavailable_reason(listing: Listing) -> str | None:
    """Why a listing cannot be sold right now, or None when it can."""
    if listing.status != Listing.Status.PUBLISHED:
        return f"“{listing.title}” is no longer on sale."
    problems = listing_problems(listing)
    if problems:
        return f"“{listing.title}” cannot be sold right now: {problems[0]}"
    return None


def terms_snapshot(listing: Listing) -> dict:
    """The terms a sale freezes: the listing's terms, title, revision and the
    splits of each recording at this moment."""
    items = list(
        ListingItem.objects.filter(listing=listing)
        .select_related("recording")
        .order_by("position", "id")
    )
    splits = {}
    for item in items:
        splits[item.recording.uid] = [
            [split.performer_id, split.share_bps]
            for split in RecordingSplit.objects.filter(recording=item.recording).order_by(
                "performer_id"
            )
        ]
    return {
        **{name: getattr(listing, name) for name in TERMS_FIELDS},
        "listing_id": listing.pk,
        "listing_title": listing.title,
        "listing_description": listing.description,
        "listing_revision": listing.revision,
        "performer_id": listing.performer_id,
        "performer_stage_name": listing.performer.stage_name,
        "recordings": [item.recording.uid for item in items],
        "splits": splits,
    }


# --- Cart ------------------------------------------------------------------------------------


@transaction.atomic
def cart_add(*, organization: Organization, user: User, listing: Listing) -> CartItem:
    require_member(organization=organization, user=user)
    reason = listing_unavailable_reason(listing)
    if reason:
        raise Conflict(reason, code="listing_not_available")
    if License.objects.filter(
        organization=organization, listing=listing, status=License.Status.ACTIVE
    ).exists():
        raise Conflict(
            f"{organization.name} already holds an active license for “{listing.title}”. "
            "Renew it from the license page instead.",
            code="already_licensed",
        )
    item, _ = CartItem.objects.get_or_create(
        organization=organization, listing=listing, defaults={"added_by": user}
    )
    return item


@transaction.atomic
def cart_remove(*, organization: Organization, user: User, listing_id: int) -> None:
    require_member(organization=organization, user=user)
    CartItem.objects.filter(organization=organization, listing_id=listing_id).delete()


# --- Checkout ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckoutStarted:
    order: Order
    redirect_url: str


def _organization_customer(organization: Organization, gateway) -> str:
    if organization.stripe_customer_id:
        return organization.stripe_customer_id
    customer_id = gateway.customer_create(
        email=organization.billing_email,
        name=organization.name,
        metadata={"organization": str(organization.pk)},
        idempotency_key=f"customer-organization-{organization.pk}",
    )
    Organization.objects.filter(pk=organization.pk, stripe_customer_id="").update(
        stripe_customer_id=customer_id
    )
    organization.stripe_customer_id = customer_id
    return customer_id


def _create_order(
    *,
    organization: Organization,
    user: User,
    listings: list[Listing],
    renews: License | None = None,
) -> Order:
    problems = [reason for listing in listings if (reason := listing_unavailable_reason(listing))]
    if problems:
        raise Conflict(
            " ".join(problems), code="listing_not_available", details={"problems": problems}
        )
    currencies = {listing.currency for listing in listings}
    if len(currencies) > 1:
        raise ValidationError(
            "Listings priced in different currencies must be bought in separate orders.",
            code="mixed_currencies",
        )
    order = Order.objects.create(
        organization=organization,
        placed_by=user,
        currency=currencies.pop(),
        total_minor=sum(listing.price_minor for listing in listings),
        simulated=get_gateway().simulated,
    )
    for listing in listings:
        snapshot = terms_snapshot(listing)
        OrderLine.objects.create(
            order=order,
            listing=listing,
            listing_revision=listing.revision,
            title=listing.title,
            price_minor=listing.price_minor,
            currency=listing.currency,
            terms=snapshot,
            recording_ids=list(
                ListingItem.objects.filter(listing=listing)
                .order_by("position", "id")
                .values_list("recording_id", flat=True)
            ),
            renews=renews,
        )
    return order


def _check_renewable(license: License, organization: Organization) -> None:
    """A license is renewed once, by its holder, while it is active or after
    it expired; a suspended or revoked one is not renewed."""
    if license.organization_id != organization.pk:
        raise NotFound("No such license.")
    if license.status not in (License.Status.ACTIVE, License.Status.EXPIRED):
        raise Conflict(
            f"License {license.uid} is {license.get_status_display().lower()} and cannot be "
            "renewed.",
            code="license_not_renewable",
        )
    if License.objects.filter(renewed_from=license).exists():
        raise Conflict(f"License {license.uid} was already renewed.", code="already_renewed")


def checkout_start(
    *,
    organization: Organization,
    user: User,
    success_url: str,
    cancel_url: str,
    listings: list[Listing] | None = None,
    renews: License | None = None,
    request: HttpRequest | None = None,
) -> CheckoutStarted:
    """Create an order from the cart (or the given listings) and a checkout
    session for it. Listings that are no longer for sale are refused here,
    before any payment. ``success_url`` may contain ``{order}``."""
    require_member(organization=organization, user=user)
    if renews is not None:
        _check_renewable(renews, organization)
    with transaction.atomic():
        if listings is None:
            items = list(
                CartItem.objects.select_for_update()
                .filter(organization=organization)
                .select_related("listing__performer")
            )
            listings = [item.listing for item in items]
        if not listings:
            raise ValidationError("The cart is empty.", code="cart_empty")
        order = _create_order(
            organization=organization, user=user, listings=listings, renews=renews
        )
        audit_record(
            action="order.created",
            actor=user,
            target=order,
            request=request,
            data={
                "lines": [line.title for line in order.lines.all()],
                "total_minor": order.total_minor,
            },
        )
    gateway = get_gateway()
    try:
        customer_id = _organization_customer(organization, gateway)
        session = gateway.checkout_session_create(
            customer_id=customer_id,
            lines=[
                CheckoutLine(
                    name=f"License: {line.title}",
                    description=f"{line.terms['duration_days']}-day license, order {order.number}",
                    amount_minor=line.price_minor,
                    currency=line.currency,
                )
                for line in order.lines.all()
            ],
            success_url=success_url.replace("{order}", order.number),
            cancel_url=cancel_url.replace("{order}", order.number),
            metadata={"order": order.number, "organization": str(organization.pk)},
            client_reference_id=order.number,
            idempotency_key=f"checkout-{order.number}",
        )
    except GatewayError as exc:
        Order.objects.filter(pk=order.pk).update(
            status=Order.Status.FAILED, status_reason=exc.message
        )
        raise ApplicationError(
            "The payment provider could not start checkout. Nothing was charged; please try again.",
            code="checkout_unavailable",
        ) from exc
    Order.objects.filter(pk=order.pk).update(
        checkout_session_id=session.id, checkout_url=session.url
    )
    order.refresh_from_db()
    return CheckoutStarted(order=order, redirect_url=session.url)


# --- Fulfilment (called by royalties.sales inside its transaction) ---------------------------


@dataclass
class LineOutcome:
    line: OrderLine
    license: License | None
    refused_reason: str | None = None


def issue_licenses(*, order: Order, now: datetime | None = None) -> list[LineOutcome]:
    """Turn a paid order's lines into licenses. Call with the order row
    locked. A line whose listing stopped being sellable between checkout and
    payment gets no license; the caller refunds it and says why."""
    now = now or timezone.now()
    outcomes = []
    for line in order.lines.select_related("listing", "renews").order_by("id"):
        existing = License.objects.filter(order_line=line).first()
        if existing is not None:
            outcomes.append(LineOutcome(line, existing))
            continue
        reason = listing_unavailable_reason(line.listing)
        if reason is None and line.renews is None:
            duplicate = License.objects.filter(
                organization=order.organization, listing=line.listing, status=License.Status.ACTIVE
            ).exists()
            if duplicate:
                reason = (
                    f"{order.organization.name} already holds an active license for “{line.title}”."
                )
        if (
            reason is None
            and line.renews is not None
            and License.objects.filter(renewed_from=line.renews).exists()
        ):
            # Two renewal checkouts for one license, both paid: the second is refunded.
            reason = f"License {line.renews.uid} was already renewed."
        if reason:
            outcomes.append(LineOutcome(line, None, reason))
            continue
        starts = now
        status = License.Status.ACTIVE
        renewed_from = None
        if line.renews is not None and line.renews.ends_at > now:
            starts = line.renews.ends_at
            status = License.Status.SCHEDULED
            renewed_from = line.renews
        elif line.renews is not None:
            renewed_from = line.renews
        license = License.objects.create(
            organization=order.organization,
            order_line=line,
            listing=line.listing,
            terms=line.terms,
            price_minor=line.price_minor,
            currency=line.currency,
            starts_at=starts,
            ends_at=starts + timedelta(days=line.terms["duration_days"]),
            status=status,
            renewed_from=renewed_from,
        )
        if renewed_from is not None:
            # The files are licensed again: the old term's deletion request is closed.
            attestation_supersede(license=renewed_from, renewal=license)
        recordings = {r.pk: r for r in line.listing.recordings.all()}
        LicenseItem.objects.bulk_create(
            [
                LicenseItem(license=license, recording_id=rid, sha256=recordings[rid].sha256)
                for rid in line.recording_ids
                if rid in recordings
            ]
        )
        audit_record(
            action="license.issued",
            actor=order.placed_by,
            target=license,
            data={
                "order": order.number,
                "listing": line.listing_id,
                "starts_at": starts.isoformat(),
                "ends_at": license.ends_at.isoformat(),
                "price_minor": line.price_minor,
                "currency": line.currency,
            },
        )
        outcomes.append(LineOutcome(line, license))
    CartItem.objects.filter(
        organization=order.organization, listing_id__in=[o.line.listing_id for o in outcomes]
    ).delete()
    return outcomes


def license_set_status(
    *,
    license: License,
    status: str,
    reason: str,
    by: User | None = None,
    request: HttpRequest | None = None,
) -> License:
    """Suspend, revoke or reactivate. Every decision leaves an audit record."""
    if status not in License.Status.values:
        raise ValidationError("Unknown license status.")
    old = license.status
    if old == status:
        return license
    if old == License.Status.REVOKED:
        raise Conflict("A revoked license cannot change again.", code="license_revoked")
    License.objects.filter(pk=license.pk).update(
        status=status, status_reason=reason, updated_at=timezone.now()
    )
    license.status, license.status_reason = status, reason
    audit_record(
        action=f"license.{status}",
        actor=by,
        target=license,
        request=request,
        data={"from": old, "to": status, "reason": reason},
    )
    return license


def staff_required(user: User) -> None:
    if not user.is_staff:
        raise PermissionDenied("Only staff can do this.")


def platform_fee_bps() -> int:
    return settings.PLATFORM_FEE_BPS
