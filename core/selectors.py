from __future__ import annotations

from django.contrib.auth import get_user_model

from accounts.models import ApiKey, Organization, PerformerProfile
from core.models import AuditEvent


def staff_overview() -> dict:
    users = get_user_model().objects
    return {
        "counts": {
            "users": users.count(),
            "performers": PerformerProfile.objects.count(),
            "organizations": Organization.objects.count(),
            "active_api_keys": ApiKey.objects.filter(revoked_at__isnull=True).count(),
        },
        "recent_events": AuditEvent.objects.select_related("actor")[:25],
    }
