from __future__ import annotations

import logging

from celery import shared_task
from django.db import connection
from django.utils import timezone

logger = logging.getLogger(__name__)


@shared_task
def ping_task(payload: str = "ping") -> dict:
    """Round trip through a worker: proves the worker runs project code and
    reaches the database."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        (db_answer,) = cursor.fetchone()
    return {"echo": payload, "database": db_answer == 1}


@shared_task
def heartbeat_task() -> str:
    """Beat runs this every minute, so a stalled beat shows in the logs."""
    now = timezone.now().isoformat()
    logger.info("heartbeat %s", now)
    return now
