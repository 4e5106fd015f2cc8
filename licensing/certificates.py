"""Machine-verifiable license certificates, signed with Ed25519.

A certificate is JSON: ``{"certificate": {...facts...}, "signature": {"alg":
"EdDSA", "kid": ..., "value": base64url}}``. The signature covers the
canonical form of ``certificate`` (UTF-8 JSON, keys sorted, no whitespace).
The public key is published at /.well-known/residuals-license-key.json as a
JWK set (kty OKP, crv Ed25519), so anyone can check a certificate offline
with ``scripts/verify_certificate.py`` (which needs only ``cryptography``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from licensing.models import License

CERTIFICATE_TYPE = "residuals.license-certificate"
CERTIFICATE_VERSION = 1


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def canonical(document: dict) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@lru_cache(maxsize=1)
def _private_key_bytes(configured: str) -> bytes:
    if configured:
        raw = base64.b64decode(configured)
        if len(raw) != 32:
            raise ImproperlyConfigured("LICENSE_SIGNING_KEY must be base64 of 32 bytes.")
        return raw
    if settings.PRODUCTION:
        raise ImproperlyConfigured(
            "Production needs LICENSE_SIGNING_KEY (base64 of 32 random bytes)."
        )
    path = settings.VAR_DIR / "license-signing-key"
    if not path.exists():
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(base64.b64encode(key).decode())
    return base64.b64decode(path.read_text().strip())


def private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(_private_key_bytes(settings.LICENSE_SIGNING_KEY))


def public_key_raw() -> bytes:
    return (
        private_key()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )


def key_id(public_raw: bytes | None = None) -> str:
    return hashlib.sha256(public_raw or public_key_raw()).hexdigest()[:16]


def public_key_document() -> dict:
    raw = public_key_raw()
    return {
        "issuer": "Residuals",
        "keys": [
            {
                "kty": "OKP",
                "crv": "Ed25519",
                "alg": "EdDSA",
                "use": "sig",
                "kid": key_id(raw),
                "x": b64url(raw),
            }
        ],
    }


def certificate_facts(license: License) -> dict:
    terms = license.terms
    items = license.items.select_related("recording").order_by("id")
    return {
        "type": CERTIFICATE_TYPE,
        "version": CERTIFICATE_VERSION,
        "issued_at": timezone.now().replace(microsecond=0).isoformat(),
        "issuer": {"name": "Residuals", "url": settings.SITE_URL},
        "license": {
            "id": license.uid,
            "status_at_issue": license.status,
            "starts_at": license.starts_at.isoformat(),
            "ends_at": license.ends_at.isoformat(),
            "price_minor": license.price_minor,
            "currency": license.currency,
            "listing": terms["listing_title"],
            "performer": terms.get("performer_stage_name", ""),
        },
        "licensee": {
            "name": license.organization.name,
            "country": license.organization.country.code,
        },
        "terms": {
            "duration_days": terms["duration_days"],
            "permitted_uses": terms["permitted_uses"],
            "worldwide": terms["worldwide"],
            "territories": terms["territories"],
            "sublicensing_allowed": terms["sublicensing_allowed"],
            "attribution_required": terms["attribution_required"],
            "exclusivity": terms["exclusivity"],
            "revenue_share_bps": terms["revenue_share_bps"],
            "revenue_threshold_minor": terms["revenue_threshold_minor"],
            "per_unit_rates": terms["per_unit_rates"],
            "reuse_caps": terms["reuse_caps"],
        },
        "files": [
            {
                "recording_id": item.recording.uid,
                "title": item.recording.title,
                "sha256": item.sha256,
            }
            for item in items
        ],
    }


def certificate_for(license: License) -> dict:
    facts = certificate_facts(license)
    signature = private_key().sign(canonical(facts))
    return {
        "certificate": facts,
        "signature": {"alg": "EdDSA", "kid": key_id(), "value": b64url(signature)},
    }


class CertificateInvalid(Exception):
    pass


def certificate_verify(document: dict, keys: dict) -> dict:
    """Check a certificate against a published key set. Returns the facts,
    or raises CertificateInvalid saying why."""
    try:
        facts = document["certificate"]
        signature = document["signature"]
        if signature.get("alg") != "EdDSA":
            raise CertificateInvalid("Unsupported signature algorithm.")
        key = next((k for k in keys.get("keys", []) if k.get("kid") == signature.get("kid")), None)
        if key is None:
            raise CertificateInvalid(f"No published key has id {signature.get('kid')!r}.")
        public = Ed25519PublicKey.from_public_bytes(b64url_decode(key["x"]))
        public.verify(b64url_decode(signature["value"]), canonical(facts))
    except InvalidSignature:
        raise CertificateInvalid(
            "The signature does not match: the certificate was altered."
        ) from None
    except (KeyError, TypeError, ValueError) as exc:
        raise CertificateInvalid(f"Not a Residuals certificate: {exc}") from None
    if facts.get("type") != CERTIFICATE_TYPE:
        raise CertificateInvalid("Not a Residuals license certificate.")
    return facts
