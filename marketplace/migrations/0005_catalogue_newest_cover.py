"""Catalogue search: a covering index for the default sort, newest first
(PostgreSQL; other databases skip it, as they skip 0003).

A search sorted by newest reads catalogue rows in ``published_at DESC,
listing_id DESC`` order and stops after the page
(``marketplace.selectors_catalogue._head``). With only the plain
``-published_at`` index PostgreSQL visited the table for every row to test
the filters and rejected most of them: about 3,000 table pages for "joy +
genuine + en" at 100,000 recordings, for a page of 20. This index carries
every filter column (the same ones as 0003's covering indexes), so those rows
are rejected in the index and the table is not read at all
(``bench/catalogue.py``).

Like 0003's, it is created here rather than declared on the model: Django
would warn on SQLite, which has no INCLUDE.
"""

from django.db import migrations

TABLE = "marketplace_catalogueentry"
INDEX = "marketplace_catalogue_newest_cover"
# Every column a search filters on (as FILTER_COLUMNS in 0003, plus primary_emotion).
FILTER_COLUMNS = (
    "primary_emotion, authenticity, intensity, valence, arousal, language, media_kind, "
    "duration_seconds, price_minor, currency, use_model_training, use_evaluation, "
    "use_fine_tuning, use_synthetic_generation, use_commercial_deployment, use_research_only, "
    "worldwide, territories, performer_id"
)


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON {TABLE} (published_at DESC, listing_id DESC) "
        f"INCLUDE ({FILTER_COLUMNS})"
    )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("marketplace", "0004_recording_preview_resend")]
    operations = [migrations.RunPython(create, drop)]
