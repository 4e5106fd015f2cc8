"""Carts, orders, licenses and what hangs off a license: downloads, deletion
attestations, reminders. A license holds an immutable copy of the terms it
was sold under (PostgreSQL refuses any change to them, migration 0002)."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q

from accounts.models import Organization
from marketplace.models import Listing, Recording

_UID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_license_uid() -> str:
    return "LIC-" + "".join(secrets.choice(_UID_ALPHABET) for _ in range(10))


def new_order_number() -> str:
    return "ORD-" + "".join(secrets.choice(_UID_ALPHABET) for _ in range(10))


class CartItem(models.Model):
    """A listing a member put in their organization's cart."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="cart_items"
    )
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    listing = models.ForeignKey(Listing, on_delete=models.CASCADE, related_name="+")
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["added_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "listing"], name="cart_item_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.listing_id} in cart of {self.organization_id}"


class Order(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Awaiting payment"
        PROCESSING = "processing", "Payment processing"
        PAID = "paid", "Paid"
        FAILED = "failed", "Payment failed"
        EXPIRED = "expired", "Checkout expired"
        REFUNDED = "refunded", "Refunded"
        DISPUTED = "disputed", "Disputed"

    number = models.CharField(max_length=20, unique=True, default=new_order_number, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="orders")
    placed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    currency = models.CharField(max_length=3)
    total_minor = models.BigIntegerField()
    simulated = models.BooleanField(default=False)
    checkout_session_id = models.CharField(max_length=200, unique=True, null=True, blank=True)
    checkout_url = models.URLField(max_length=1000, blank=True)
    payment_intent_id = models.CharField(max_length=200, blank=True, db_index=True)
    refunded_minor = models.BigIntegerField(default=0)
    # What our own refunds (for lines that could not be licensed) add up to,
    # recorded under the order lock *before* the provider is asked: a
    # charge.refunded event up to this amount is ours, whenever it arrives.
    refund_requested_minor = models.BigIntegerField(default=0)
    status_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    receipt_sent_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(total_minor__gte=0), name="order_total_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return self.number


class OrderLine(models.Model):
    """One listing bought in an order, with the price and terms it was sold
    at frozen when checkout began (a later listing edit changes nothing here)."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="lines")
    listing = models.ForeignKey(Listing, on_delete=models.PROTECT, related_name="+")
    listing_revision = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    price_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    terms = models.JSONField()
    recording_ids = models.JSONField()
    # Set when a renewal order extends an existing license.
    renews = models.ForeignKey(
        "License", null=True, blank=True, on_delete=models.PROTECT, related_name="renewal_lines"
    )

    class Meta:
        ordering = ["order", "id"]

    def __str__(self) -> str:
        return f"{self.order.number}: {self.title}"


class License(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SCHEDULED = "scheduled", "Starts later"  # a renewal that begins when the current term ends
        EXPIRED = "expired", "Expired"
        SUSPENDED = "suspended", "Suspended"
        REVOKED = "revoked", "Revoked"

    uid = models.CharField(max_length=20, unique=True, default=new_license_uid, editable=False)
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="licenses"
    )
    order_line = models.OneToOneField(OrderLine, on_delete=models.PROTECT, related_name="license")
    listing = models.ForeignKey(Listing, on_delete=models.PROTECT, related_name="licenses")
    recordings = models.ManyToManyField(Recording, through="LicenseItem", related_name="licenses")
    # Immutable copy of the terms, the price paid and the term of the license.
    terms = models.JSONField()
    price_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    status_reason = models.TextField(blank=True)
    renewed_from = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="renewed_by"
    )
    reminder_30_sent_at = models.DateTimeField(null=True, blank=True)
    reminder_7_sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="license_term_positive"
            ),
        ]
        indexes = [models.Index(fields=["status", "ends_at"])]

    def __str__(self) -> str:
        return self.uid


class LicenseItem(models.Model):
    license = models.ForeignKey(License, on_delete=models.PROTECT, related_name="items")
    recording = models.ForeignKey(Recording, on_delete=models.PROTECT, related_name="license_items")
    sha256 = models.CharField(max_length=64)

    class Meta:
        ordering = ["license", "id"]
        constraints = [
            models.UniqueConstraint(fields=["license", "recording"], name="license_item_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.license_id}: {self.recording_id}"


class DownloadLog(models.Model):
    """Every download of an original file: who, when, which file, how many bytes."""

    license = models.ForeignKey(License, on_delete=models.PROTECT, related_name="downloads")
    recording = models.ForeignKey(Recording, on_delete=models.PROTECT, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    api_key_prefix = models.CharField(max_length=32, blank=True)
    kind = models.CharField(max_length=10, default="file")  # file, zip
    started_at = models.DateTimeField(auto_now_add=True)
    byte_range = models.CharField(max_length=100, blank=True)
    bytes_sent = models.BigIntegerField(default=0)
    completed = models.BooleanField(default=False)
    ip_address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"{self.license_id}/{self.recording_id} at {self.started_at:%Y-%m-%d %H:%M}"


class DeletionAttestation(models.Model):
    """Requested when a license ends, is revoked or is refunded; the
    organization attests it deleted every copy and derived raw data. A
    request is superseded (no longer due) when a renewal licenses the files
    again."""

    class Status(models.TextChoices):
        REQUESTED = "requested", "Requested"
        SUBMITTED = "submitted", "Submitted"
        SUPERSEDED = "superseded", "Superseded by a renewal"

    license = models.OneToOneField(License, on_delete=models.PROTECT, related_name="attestation")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.REQUESTED)
    reason = models.CharField(max_length=20, default="expired")  # expired, revoked, refunded
    requested_at = models.DateTimeField()
    due_at = models.DateTimeField()
    submitted_at = models.DateTimeField(null=True, blank=True)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    signer_name = models.CharField(max_length=200, blank=True)
    signer_title = models.CharField(max_length=200, blank=True)
    statement = models.TextField(blank=True)
    systems = models.TextField(blank=True, help_text="Where copies were held and deleted.")
    ip_address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["due_at", "id"]

    def __str__(self) -> str:
        return f"Deletion attestation for {self.license_id} ({self.status})"
