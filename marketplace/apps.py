from django.apps import AppConfig
from django.core import checks


class MarketplaceConfig(AppConfig):
    name = "marketplace"

    def ready(self):
        from marketplace.checks import (
            TAG,
            consent_current_version_check,
            consent_texts_unchanged_check,
        )

        checks.register(consent_current_version_check, TAG)
        # Reads the database: run by migrate and by check --database.
        checks.register(consent_texts_unchanged_check, TAG, checks.Tags.database)
