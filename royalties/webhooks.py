"""POST /webhooks/stripe/: verify, record, route.

The view verifies the Stripe-Signature header through the gateway (several
secrets, 300 s tolerance), records the event by its id — a replayed or
duplicated event finds the row and changes nothing — and hands processing to
a Celery task. Event types without a handler are recorded and answered 200.

An event is done when its row has ``processed_at``; until then it is retried:

- the task retries a failed handler with exponential backoff
  (royalties.tasks.stripe_event_process_task);
- a delivery whose event is recorded but not yet processed (its task failed,
  waits to retry, or was never queued) queues it again instead of being
  dropped as a duplicate;
- when the task cannot be queued (broker down) the view answers 503, so
  Stripe sends the event again, and that delivery queues it;
- ``stripe_events_requeue`` (beat, every few minutes) queues events left
  unprocessed for longer than ``STUCK_AFTER``, for as long as Stripe itself
  would keep sending them (``GIVE_UP_AFTER``).

Processing twice is harmless: the event row is locked and ``processed_at``
checked first, and each handler locks the order row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

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

# An unprocessed event older than this is requeued by the sweeper …
STUCK_AFTER = timedelta(minutes=5)
# … until it is this old: Stripe stops re-sending an event after three days.
GIVE_UP_AFTER = timedelta(days=3)
# How many stuck events one sweep queues (the next sweep takes the rest).
SWEEP_BATCH = 500


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


def _order_reference(obj: dict) -> str | None:
    """The order number our checkout puts in the payment's metadata
    (``payment_intent_data.metadata``, which Stripe copies to the charge), on
    the object itself or on its charge / payment intent when expanded."""
    for candidate in (obj, obj.get("charge"), obj.get("payment_intent")):
        if isinstance(candidate, dict):
            order = (candidate.get("metadata") or {}).get("order")
            if order:
                return str(order)
    return None


def _id_of(value) -> str | None:
    return value.get("id") if isinstance(value, dict) else value


def _charge_refunded(obj: dict) -> str:
    return sales.charge_refunded(
        payment_intent=_id_of(obj.get("payment_intent")),
        amount_refunded=int(obj.get("amount_refunded") or 0),
        amount=int(obj.get("amount") or 0),
        order_number=_order_reference(obj),
    )


def _dispute_created(obj: dict) -> str:
    return sales.dispute_created(
        payment_intent=_id_of(obj.get("payment_intent")), order_number=_order_reference(obj)
    )


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


def _enqueue(event_pk: int, *, retry: bool = True) -> None:
    from royalties.tasks import stripe_event_process_task

    stripe_event_process_task.delay(event_pk, retry=retry)


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
    handled = event.type in HANDLERS
    duplicate = False
    try:
        with transaction.atomic():
            stored = StripeEvent.objects.create(
                event_id=event.id,
                type=event.type,
                payload={"object": event.object, "created": event.created},
                # An event without a handler is done as soon as it is recorded.
                processed_at=None if handled else timezone.now(),
                outcome="" if handled else "ignored: no handler",
            )
    except IntegrityError:
        stored = StripeEvent.objects.get(event_id=event.id)
        if stored.processed_at is not None:
            return JsonResponse({"received": True, "duplicate": True})
        duplicate = True  # recorded, never finished: queue it again
    if not handled:
        return JsonResponse({"received": True, "handled": False})
    # The row is committed (the atomic block above has closed and requests are
    # not atomic), so a worker finds it. Queued here rather than on_commit so a
    # broker failure reaches this view: Stripe then sends the event again.
    try:
        _enqueue(stored.pk)
    except Exception:
        logger.exception("Could not queue Stripe event %s (%s)", event.id, event.type)
        StripeEvent.objects.filter(pk=stored.pk, processed_at__isnull=True).update(
            outcome="waiting: could not be queued"
        )
        return error_response(
            "queue_unavailable",
            "The event was recorded but could not be queued for processing; send it again.",
            503,
        )
    if duplicate:
        return JsonResponse({"received": True, "duplicate": True, "requeued": True})
    return JsonResponse({"received": True, "handled": True})


def stripe_event_process(event_pk: int) -> str:
    """Run the handler once. The event row is locked so two workers never
    process one event; the handler locks the order row itself. When the
    handler fails, nothing it did is kept, the failure is noted in
    ``outcome`` (``processed_at`` stays empty) and the error is raised for
    the task to retry."""
    try:
        with transaction.atomic():
            stored = StripeEvent.objects.select_for_update().get(pk=event_pk)
            if stored.processed_at is not None:
                return stored.outcome
            outcome = HANDLERS[stored.type](stored.payload["object"])
            stored.processed_at = timezone.now()
            stored.outcome = outcome[:200]
            stored.save(update_fields=["processed_at", "outcome"])
    except sales.EventNotReady as exc:
        _note_failure(event_pk, f"waiting: {exc.code}")
        raise
    except Exception as exc:
        _note_failure(event_pk, f"failed: {exc.__class__.__name__}: {exc}")
        raise
    logger.info("Stripe event %s (%s): %s", stored.event_id, stored.type, outcome)
    return outcome


def _note_failure(event_pk: int, outcome: str) -> None:
    StripeEvent.objects.filter(pk=event_pk, processed_at__isnull=True).update(outcome=outcome[:200])


def stripe_events_requeue(*, now: datetime | None = None) -> list[str]:
    """Queue again every event left unprocessed for more than STUCK_AFTER
    (its retries ran out, its worker died, or it was never queued), up to
    GIVE_UP_AFTER after it arrived. Returns the event ids queued. Queued
    without the task's own retries: the next sweep is the retry."""
    now = now or timezone.now()
    stuck = list(
        StripeEvent.objects.filter(
            processed_at__isnull=True,
            received_at__lte=now - STUCK_AFTER,
            received_at__gt=now - GIVE_UP_AFTER,
        )
        .order_by("received_at", "id")
        .values_list("pk", "event_id")[:SWEEP_BATCH]
    )
    for pk, _ in stuck:
        _enqueue(pk, retry=False)
    if stuck:
        logger.info("Requeued %d unprocessed Stripe event(s)", len(stuck))
    return [event_id for _, event_id in stuck]
