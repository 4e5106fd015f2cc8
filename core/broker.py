"""Broker checks shared by /healthz and the Celery worker start-up."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from kombu import Connection


def ensure_embedded_broker_folders() -> None:
    """The filesystem transport needs its folders before anyone publishes."""
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    if not settings.CELERY_BROKER_URL.startswith("filesystem"):
        return
    from pathlib import Path

    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if options.get(key):
            Path(options[key]).mkdir(parents=True, exist_ok=True)


@dataclass(frozen=True)
class BrokerStatus:
    ok: bool
    transport: str
    error: str = ""


def broker_status() -> BrokerStatus:
    url = settings.CELERY_BROKER_URL
    timeout = settings.HEALTHZ_BROKER_TIMEOUT_SECONDS
    ensure_embedded_broker_folders()
    connection = Connection(
        url,
        connect_timeout=timeout,
        transport_options={
            **settings.CELERY_BROKER_TRANSPORT_OPTIONS,
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            "max_retries": 0,
        },
    )
    transport = connection.transport_cls if isinstance(connection.transport_cls, str) else "custom"
    try:
        connection.ensure_connection(max_retries=1, timeout=timeout)
        # A round trip: the transport must answer, not merely accept a socket.
        with connection.channel() as channel:
            channel.queue_declare(queue="residuals.healthz", auto_delete=True, durable=False)
            channel.queue_delete(queue="residuals.healthz")
    except Exception as exc:  # any failure of the broker is a failed health check
        return BrokerStatus(ok=False, transport=transport, error=exc.__class__.__name__)
    finally:
        connection.release()
    return BrokerStatus(ok=True, transport=transport)
