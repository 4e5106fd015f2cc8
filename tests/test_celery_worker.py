"""A round trip through a real Celery worker process on the Redis broker."""

from __future__ import annotations

import pytest

from core.tasks import ping_task
from tests.celery_support import running_worker

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_round_trip_through_a_real_worker(tmp_path):
    with running_worker(tmp_path) as worker:
        result = ping_task.delay("hello")
        assert result.get(timeout=60) == {"echo": "hello", "database": True}
        assert "core.tasks.ping_task" in worker.output()
        assert "succeeded" in worker.output()
