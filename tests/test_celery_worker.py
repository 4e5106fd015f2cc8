"""A round trip through a real Celery worker process on a real broker."""

from __future__ import annotations

import pytest

from core.tasks import ping_task
from tests.celery_support import REDIS_URL, running_worker

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize(
    "broker_url",
    [REDIS_URL, "amqp://guest:guest@127.0.0.1:5672//"],
    ids=["redis", "rabbitmq"],
)
def test_round_trip_through_a_real_worker(tmp_path, broker_url):
    with running_worker(tmp_path, broker_url=broker_url) as worker:
        result = ping_task.delay("hello")
        assert result.get(timeout=60) == {"echo": "hello", "database": True}
        assert worker.wait_for_output("core.tasks.ping_task"), worker.output()
        assert worker.wait_for_output("succeeded"), worker.output()
