"""Webhook signatures made exactly as Stripe makes them: the header is
``t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<payload>" keyed by the endpoint
secret>``."""

from __future__ import annotations

import hashlib
import hmac
import time


def sign_payload(payload: str, secret: str, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    signature = hmac.new(secret.encode(), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={signature}"
