"""System checks for the payment gateway (``manage.py check``; also run by
``runserver`` and ``migrate``), so a misconfigured deployment is refused at
start rather than at a buyer's first checkout.

- ``residuals.payments.E001``: no ``STRIPE_SECRET_KEY`` and DEBUG off. The
  simulated gateway would refuse every payment (``get_gateway``); only local
  development (DEBUG on) and the test suite (``RESIDUALS_ENV=test``, whose
  tests point the gateway at the Stripe double or turn DEBUG on themselves)
  run without a key.
- ``residuals.payments.W001``: a key but no ``STRIPE_WEBHOOK_SECRETS``. Every
  webhook would be refused, so no paid order would ever be fulfilled.
"""

from __future__ import annotations

from django.conf import settings
from django.core import checks

TAG = "payments"


def payment_gateway_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    if not settings.STRIPE_SECRET_KEY:
        if settings.DEBUG or settings.RESIDUALS_ENV == "test":
            return []
        return [
            checks.Error(
                "No STRIPE_SECRET_KEY is configured and DEBUG is off: payments would be "
                "simulated, and the simulated gateway runs only for local development.",
                hint="Set STRIPE_SECRET_KEY (and STRIPE_WEBHOOK_SECRETS), or DEBUG=1 for a "
                "local run.",
                id="residuals.payments.E001",
            )
        ]
    if not [secret for secret in settings.STRIPE_WEBHOOK_SECRETS if secret]:
        return [
            checks.Warning(
                "STRIPE_SECRET_KEY is set but STRIPE_WEBHOOK_SECRETS is empty: every Stripe "
                "webhook will be refused, so paid orders are never fulfilled.",
                hint="Set STRIPE_WEBHOOK_SECRETS to the endpoint's signing secret (several, "
                "comma-separated, while a secret is rotated).",
                id="residuals.payments.W001",
            )
        ]
    return []
