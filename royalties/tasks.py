from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import Retry

from core.payments import GatewayError

logger = logging.getLogger(__name__)

EVENT_RETRY_BASE_SECONDS = 30
EVENT_RETRY_MAX_SECONDS = 60 * 60


def event_retry_countdown(retries: int) -> int:
    """Seconds before retry number ``retries + 1``: 30 s, doubling, at most an
    hour (eight retries span about two hours; the sweeper carries on)."""
    return min(EVENT_RETRY_BASE_SECONDS * 2**retries, EVENT_RETRY_MAX_SECONDS)


@shared_task(bind=True, acks_late=True, max_retries=8)
def stripe_event_process_task(self, event_pk: int, retry: bool = True) -> str | Retry:
    """Process one recorded Stripe event. A failing handler is retried with
    exponential backoff; once the retries are spent (or when the sweeper
    queued it, ``retry=False``), the event stays unprocessed and
    ``stripe_events_sweep_task`` queues it again later."""
    from royalties.webhooks import stripe_event_process

    try:
        return stripe_event_process(event_pk)
    except Exception as exc:
        if not retry or self.request.retries >= self.max_retries:
            logger.warning("Stripe event row %s left for the sweeper: %s", event_pk, exc)
            return f"not processed: {exc}"
        # A worker schedules the retry (Retry is raised); an eager run (the test
        # suite) gets it back and re-runs the task in place, as Celery's apply does.
        return self.retry(
            exc=exc,
            countdown=event_retry_countdown(self.request.retries),
            throw=not self.request.is_eager,
        )


@shared_task(acks_late=True)
def stripe_events_sweep_task() -> int:
    """Beat runs this every 5 minutes: requeue Stripe events left unprocessed."""
    from royalties.webhooks import stripe_events_requeue

    return len(stripe_events_requeue())


@shared_task(bind=True, acks_late=True, max_retries=10, default_retry_delay=60)
def order_refund_lines_task(self, order_id: int, line_ids: list[int]) -> str:
    from royalties.sales import refund_lines

    try:
        return refund_lines(order_id=order_id, line_ids=line_ids)
    except GatewayError as exc:
        if exc.retryable:
            raise self.retry(exc=exc) from exc
        raise


@shared_task(acks_late=True)
def order_receipt_send_task(order_id: int) -> str:
    from licensing.notifications import order_receipt_send

    return order_receipt_send(order_id)


@shared_task(bind=True, acks_late=True, max_retries=3, default_retry_delay=30)
def tally_usage_task(self, max_events: int | None = None) -> dict:
    """Beat runs this every few minutes; several may run at once (one
    tallies, the others find the cursor locked and return)."""
    from royalties.tally import MAX_EVENTS_PER_PASS, tally_usage

    results = tally_usage(max_events=max_events or MAX_EVENTS_PER_PASS)
    return {"batches": len(results), "events": sum(r.events for r in results)}


@shared_task(acks_late=True)
def royalty_invoices_task() -> int:
    from royalties.invoicing import royalty_invoices_run

    return len(royalty_invoices_run())


@shared_task(acks_late=True)
def royalty_invoices_overdue_task() -> dict:
    """Beat runs this daily: mark overdue royalty invoices and, when the
    setting is on, suspend the organizations' licenses until paid."""
    from royalties.invoicing import royalty_invoices_enforce_overdue

    return royalty_invoices_enforce_overdue()
