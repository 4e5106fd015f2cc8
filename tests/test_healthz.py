"""/healthz reports the database and the broker."""

from __future__ import annotations

import pytest
from django.test import override_settings

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "broker_url",
    ["redis://127.0.0.1:6379/15", "amqp://guest:guest@127.0.0.1:5672//", "filesystem://"],
    ids=["redis", "rabbitmq", "embedded"],
)
def test_healthy_with_the_broker_up(client, broker_url):
    with override_settings(CELERY_BROKER_URL=broker_url):
        response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == {"ok": True, "vendor": "postgresql"}
    assert body["broker"]["ok"] is True


@pytest.mark.parametrize(
    "broker_url",
    ["redis://127.0.0.1:1/0", "amqp://guest:guest@127.0.0.1:1//"],
    ids=["redis", "rabbitmq"],
)
def test_unavailable_when_the_broker_is_unreachable(client, broker_url):
    with override_settings(CELERY_BROKER_URL=broker_url, HEALTHZ_BROKER_TIMEOUT_SECONDS=1):
        response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["database"]["ok"] is True
    assert body["broker"]["ok"] is False
    assert body["broker"]["error"]
