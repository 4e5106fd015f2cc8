from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Platform"

    def ready(self):
        # With the embedded broker, whoever publishes first (the web server,
        # a management command or the worker) finds its folders in place.
        from core.broker import ensure_embedded_broker_folders

        ensure_embedded_broker_folders()
