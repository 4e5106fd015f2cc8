"""POST /webhooks/stripe/: verify, record, route.

The view verifies the Stripe-Signature header through the gateway (several
secrets, 300 s tolerance), records the event by its id — a replayed or
duplicated event finds the row and changes nothing — and hands processing to
a Celery task. Event types without a handler are recorded and answered 200.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import IntegrityError, transaction
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from core.api import error_response
from core.models import StripeEvent
from core.payments import WebhookSignatureError, get_gateway
from royalties import sales

logger = logging.getLogger(__name__)


def _session_completed(obj: dict) -> str:
    return sales.checkout_completed(
        session_id=obj["id"],
        payment_status=obj.get("payment_status", ""),
        payment_intent=obj.get("payment_intent"),
    )


def _async_succeeded(obj: dict) -> str:
    return sales.async_payment_settled(
        session_id=obj["id"], succeeded=True, payment_intent=obj.get("payment_intent")
    )


def _async_failed(obj: dict) -> str:
    return sales.async_payment_settled(
        session_id=obj["id"], succeeded=False, payment_intent=obj.get("payment_intent")
    )


def _session_expired(obj: dict) -> str:
    return sales.checkout_expired(session_id=obj["id"])


def _charge_refunded(obj: dict) -> str:
    return sales.charge_refunded(
        payment_intent=obj.get("payment_intent"),
        amount_refunded=int(obj.get("amount_refunded") or 0),
        amount=int(obj.get("amount") or 0),
    )


def _dispute_created(obj: dict) -> str:
    return sales.dispute_created(payment_intent=obj.get("payment_intent"))


def _invoice_paid(obj: dict) -> str:
    from royalties.invoicing import royalty_invoice_paid

    return royalty_invoice_paid(provider_invoice_id=obj["id"])


def _invoice_payment_failed(obj: dict) -> str:
    from royalties.invoicing import royalty_invoice_payment_failed

    return royalty_invoice_payment_failed(provider_invoice_id=obj["id"])


HANDLERS: dict[str, Callable[[dict], str]] = {
    "invoice.paid": _invoice_paid,
    "invoice.payment_failed": _invoice_payment_failed,
    "checkout.session.completed": _session_completed,
    "checkout.session.async_payment_succeeded": _async_succeeded,
    "checkout.session.async_payment_failed": _async_failed,
    "checkout.session.expired": _session_expired,
    "charge.refunded": _charge_refunded,
    "charge.dispute.created": _dispute_created,
}


def register(event_type: str, handler: Callable[[dict], str]) -> None:
    """Later features (invoices, Connect accounts) add their handlers here."""
    HANDLERS[event_type] = handler


@csrf_exempt
@require_POST
def stripe_webhook(request):
    try:
        event = get_gateway().webhook_event_construct(
            request.body, request.headers.get("Stripe-Signature", "")
        )
    except WebhookSignatureError as exc:
        logger.warning("Refused a Stripe webhook: %s", exc)
        return error_response(
            "invalid_signature", "The Stripe-Signature header does not verify.", 400
        )
    try:
        with transaction.atomic():
            stored = StripeEvent.objects.create(
                event_id=event.id,
                type=event.type,
                payload={"object": event.object, "created": event.created},
            )
    except IntegrityError:
        return JsonResponse({"received": True, "duplicate": True})
    if event.type not in HANDLERS:
        StripeEvent.objects.filter(pk=stored.pk).update(
            processed_at=timezone.now(), outcome="ignored: no handler"
        )
        return JsonResponse({"received": True, "handled": False})
    from royalties.tasks import stripe_event_process_task

    transaction.on_commit(lambda: stripe_event_process_task.delay(stored.pk))
    return JsonResponse({"received": True, "handled": True})


def stripe_event_process(event_pk: int) -> str:
    """Run the handler once. The event row is locked so two workers never
    process one event; the handler locks the order row itself."""
    with transaction.atomic():
        stored = StripeEvent.objects.select_for_update().get(pk=event_pk)
        if stored.processed_at is not None:
            return stored.outcome
        outcome = HANDLERS[stored.type](stored.payload["object"])
        stored.processed_at = timezone.now()
        stored.outcome = outcome[:200]
        stored.save(update_fields=["processed_at", "outcome"])
    logger.info("Stripe event %s (%s): %s", stored.event_id, stored.type, outcome)
    return outcome
