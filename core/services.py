from __future__ import annotations

from typing import Any

from django.db import models
from django.http import HttpRequest

from core.models import AuditEvent


def client_ip(request: HttpRequest | None) -> str | None:
    """The address the request came from. Behind a trusted proxy, deployments
    set REMOTE_ADDR through the proxy's configuration (not X-Forwarded-For,
    which any client can forge)."""
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def audit_record(
    *,
    action: str,
    actor=None,
    target: models.Model | None = None,
    request: HttpRequest | None = None,
    api_key=None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one audit row. Call it inside the transaction of the change it
    records, so the change and its record commit or roll back together."""
    if actor is not None and not getattr(actor, "is_authenticated", True):
        actor = None
    return AuditEvent.objects.create(
        action=action,
        actor=actor,
        actor_api_key_prefix=getattr(api_key, "prefix", "") or "",
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        ip_address=client_ip(request),
        data=data or {},
    )


def audit_records(*, action: str, targets: list[tuple[models.Model, dict[str, Any]]]) -> None:
    """Append one audit row per (target, data), by no actor, in one INSERT:
    for a service that records many changes of one kind at once (the tally's
    ledger postings). Same rows as ``audit_record`` would write."""
    AuditEvent.objects.bulk_create(
        [
            AuditEvent(
                action=action,
                target_type=target._meta.label_lower,
                target_id=str(target.pk),
                data=data or {},
            )
            for target, data in targets
        ]
    )
