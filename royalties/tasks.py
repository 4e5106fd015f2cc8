from __future__ import annotations

from celery import shared_task

from core.payments import GatewayError


@shared_task(bind=True, acks_late=True, max_retries=8, default_retry_delay=30)
def stripe_event_process_task(self, event_pk: int) -> str:
    from royalties.webhooks import stripe_event_process

    return stripe_event_process(event_pk)


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
