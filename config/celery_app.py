"""The Celery application. Broker from CELERY_BROKER_URL (Redis, RabbitMQ, or
the embedded filesystem transport); every setting prefixed CELERY_ in
config.settings applies."""

import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("residuals")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def _prepare_embedded_broker(**_kwargs):
    from core.broker import ensure_embedded_broker_folders

    ensure_embedded_broker_folders()
