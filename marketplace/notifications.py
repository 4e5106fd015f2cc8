"""Emails to performers about staff decisions on their listings. Sent by a
Celery task after the decision commits (``services._listing_set_status``)."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse

from core.models import AuditEvent
from marketplace.models import Listing

# Decision (the audit action) → subject line.
SUBJECTS = {
    "listing.published": "“{title}” is approved and on sale",
    "listing.rejected": "Changes requested on “{title}”",
    "listing.unpublished": "“{title}” was taken off sale",
}


def listing_decision_notify(audit_event_id: int) -> str:
    """Tell the performer what staff decided, in the words of the audit
    record of that decision (its reason included). Returns what happened."""
    event = AuditEvent.objects.filter(pk=audit_event_id, action__in=SUBJECTS).first()
    if event is None:
        return "no_such_decision"
    listing = Listing.objects.filter(pk=event.target_id).select_related("performer__user").first()
    if listing is None:
        return "no_such_listing"
    context = {
        "listing": listing,
        "decision": event.action.removeprefix("listing."),
        "reason": (event.data or {}).get("reason", ""),
        "listing_url": settings.SITE_URL + reverse("listing_detail", args=[listing.pk]),
        "catalogue_url": settings.SITE_URL + reverse("catalogue_detail", args=[listing.pk]),
    }
    send_mail(
        SUBJECTS[event.action].format(title=listing.title),
        render_to_string("marketplace/email/listing_decision.txt", context),
        settings.DEFAULT_FROM_EMAIL,
        [listing.performer.user.email],
    )
    return "sent"
