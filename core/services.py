from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import models
from django.http import HttpRequest

from core.models import AuditEvent

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def _address(text: str) -> IPAddress | None:
    """An address as a proxy writes it into X-Forwarded-For: bare, or with a
    port (``203.0.113.7:5120``, ``[2001:db8::1]:443``). IPv4-mapped IPv6
    addresses are read as the IPv4 address they carry."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def client_ip(request: HttpRequest | None) -> str | None:
    """The address the request came from, as stored in consent and audit
    records.

    REMOTE_ADDR, unless it is one of ``settings.TRUSTED_PROXIES``: then the
    client is read from X-Forwarded-For, walking it from the right (each
    proxy appends the address it saw) past every trusted proxy to the first
    entry that is not one. Entries further left were written by the client
    itself and anyone can forge them, so they are never believed. A request
    from an untrusted address has its X-Forwarded-For ignored altogether."""
    if request is None:
        return None
    remote = _address(request.META.get("REMOTE_ADDR") or "")
    if remote is None:
        return None
    trusted = _networks(tuple(settings.TRUSTED_PROXIES))

    def is_trusted(address: IPAddress) -> bool:
        return any(address in network for network in trusted)

    if not is_trusted(remote):
        return str(remote)
    # Several X-Forwarded-For headers arrive joined by commas, in order.
    hops = [h for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
    client = remote
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            # A trusted proxy never writes garbage: this entry came from
            # the client. The last address a trusted proxy vouched for is
            # the nearest one known.
            break
        client = address
        if not is_trusted(address):
            break
    return str(client)


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
