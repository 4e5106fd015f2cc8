"""Emails about orders and licenses. Sent by Celery tasks after commit."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership
from licensing.models import License, Order


def _recipients(order: Order) -> list[str]:
    emails = {order.placed_by.email, order.organization.billing_email}
    return sorted(e for e in emails if e)


def order_receipt_send(order_id: int) -> str:
    """Send the receipt once, whatever retries happen."""
    order = Order.objects.select_related("organization", "placed_by").get(pk=order_id)
    if order.receipt_sent_at is not None:
        return "already_sent"
    licenses = list(License.objects.filter(order_line__order=order).order_by("id"))
    context = {
        "order": order,
        "lines": list(order.lines.all()),
        "licenses": licenses,
        "site_url": settings.SITE_URL,
        "licenses_url": settings.SITE_URL
        + reverse("buyer_licenses", args=[order.organization.slug]),
    }
    send_mail(
        f"Receipt for order {order.number}",
        render_to_string("licensing/email/receipt.txt", context),
        settings.DEFAULT_FROM_EMAIL,
        _recipients(order),
    )
    updated = Order.objects.filter(pk=order.pk, receipt_sent_at__isnull=True).update(
        receipt_sent_at=timezone.now()
    )
    return "sent" if updated else "already_sent"


def organization_emails(organization) -> list[str]:
    owners = Membership.objects.filter(organization=organization).select_related("user")
    emails = {m.user.email for m in owners} | {organization.billing_email}
    return sorted(e for e in emails if e)
