"""Background jobs of the marketplace. Thin: each takes ids, calls a
service and owns only its retry policy."""

from __future__ import annotations

import logging

from celery import shared_task

from marketplace.models import Recording
from marketplace.services.recordings import (
    PREVIEW_RESEND_AFTER_MINUTES,
    PreviewSourceUnavailable,
    recording_preview_build,
    recording_preview_mark_failed,
    recording_previews_resend,
)

logger = logging.getLogger(__name__)

PREVIEW_MAX_RETRIES = 4


@shared_task(bind=True, acks_late=True, max_retries=PREVIEW_MAX_RETRIES)
def recording_preview_task(self, recording_id: int) -> str:
    """Build a recording's preview. Safe to run twice (the service is
    idempotent), so the message is acknowledged only after the work. Media
    that cannot be previewed is marked failed at once; storage that cannot
    be read is retried with back-off, then marked failed."""
    recording = Recording.objects.filter(pk=recording_id).first()
    if recording is None:
        return "missing"
    try:
        recording = recording_preview_build(recording)
    except PreviewSourceUnavailable as exc:
        if self.request.retries >= self.max_retries:
            recording_preview_mark_failed(recording_id, f"Storage could not be read: {exc}")
            return Recording.PreviewStatus.FAILED
        raise self.retry(exc=exc, countdown=min(600, 15 * 2**self.request.retries)) from exc
    return recording.preview_status


@shared_task
def recording_previews_resend_task(
    older_than_minutes: int = PREVIEW_RESEND_AFTER_MINUTES,
) -> dict[str, int]:
    """Periodic (CELERY_BEAT_SCHEDULE): send the preview task again for
    previews left pending or failed on storage. No retry policy: the next
    run picks up whatever this one missed."""
    report = recording_previews_resend(older_than_minutes=older_than_minutes)
    if report.resent or report.abandoned:
        logger.info("Preview resend: %s", report.as_dict())
    return report.as_dict()


@shared_task
def listing_decision_notify_task(audit_event_id: int) -> str:
    """Email the performer a staff decision on their listing. No retries and
    acknowledged on receipt: a notice may be lost to a crash, but is never
    sent twice."""
    from marketplace.notifications import listing_decision_notify

    return listing_decision_notify(audit_event_id)
