from django.apps import AppConfig
from django.core import checks


class LicensingConfig(AppConfig):
    name = "licensing"

    def ready(self):
        # Licensing sells through the payment gateway, so it registers the
        # gateway's configuration check (core.payments holds no app of its own).
        from core.payments.checks import TAG, payment_gateway_check

        checks.register(payment_gateway_check, TAG)
