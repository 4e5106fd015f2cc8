"""Background jobs of the marketplace. Thin: each takes ids, calls a
service and owns only its retry policy."""

from __future__ import annotations

import logging

from celery import shared_task

from marketplace.models import Recording
from marketplace.services.recordings import (
    PreviewSourceUnavailable,
    recording_preview_build,
    recording_preview_mark_failed,
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
