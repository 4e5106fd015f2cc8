from __future__ import annotations

from celery import shared_task


@shared_task(bind=True, acks_late=True, max_retries=3, default_retry_delay=60)
def licenses_lifecycle_task(self) -> str:
    """Beat runs this every 10 minutes. Idempotent: renewals start, reminders
    go out and licenses expire exactly once, however often it runs."""
    from licensing.lifecycle import licenses_lifecycle_run

    return licenses_lifecycle_run().summary()
