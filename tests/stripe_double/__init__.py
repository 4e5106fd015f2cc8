"""A stateful Stripe double for the test suite: an HTTP server on loopback
that answers the endpoints the project uses, keeps the objects it creates,
honours idempotency keys, and refuses (with Stripe's error shape) any request
that Stripe's published OpenAPI description does not allow. Every refusal is
also recorded as a violation, and the ``stripe_double`` fixture fails the
test that caused one."""

from tests.stripe_double.server import StripeDouble
from tests.stripe_double.webhooks import sign_payload

__all__ = ["StripeDouble", "sign_payload"]
