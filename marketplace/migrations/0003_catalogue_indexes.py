"""Catalogue search at scale, on PostgreSQL (other databases skip this).

1. A stored tsvector. The expression index of 0002 finds candidate rows, but
   a phrase query must recheck each one and ranking must score each one,
   and both recomputed ``to_tsvector`` per row: hundreds of milliseconds for
   a common word at 100,000 rows. A generated column holds the vector once,
   written by PostgreSQL itself whenever ``search_document`` changes (the
   model does not declare it, so inserts never mention it); its GIN index
   replaces 0002's.
2. Indexes for reading little: the count reads distinct listing ids in
   index order and stops at a cap, so indexes on listing_id — and on
   (primary_emotion, listing_id), since most searches name an emotion —
   INCLUDING the filter columns answer it from the index alone; intensity,
   the one sort column without an index, gets one ending in listing_id (the
   tie-break).
3. A generation number for the catalogue, bumped by a statement trigger on
   every change to ``marketplace_catalogueentry``, in the same transaction.
   Facet counts are cached under it (``marketplace.selectors_catalogue``),
   so a cached count is never older than the catalogue a reader can see.
"""

from django.db import migrations

OLD_INDEX = "marketplace_catalogue_fts"
INDEX = "marketplace_catalogue_fts_vector"
COVER = "marketplace_catalogue_listing_cover"
BY_INTENSITY = "marketplace_catalogue_intensity_listing"
EMOTION_COVER = "marketplace_catalogue_emotion_cover"
# Every column a search filters on but primary_emotion (CatalogueEntry).
FILTER_COLUMNS = (
    "authenticity, intensity, valence, arousal, language, media_kind, duration_seconds, "
    "price_minor, currency, use_model_training, use_evaluation, use_fine_tuning, "
    "use_synthetic_generation, use_commercial_deployment, use_research_only, worldwide, "
    "territories, performer_id"
)
TABLE = "marketplace_catalogueentry"

FORWARD = [
    f"ALTER TABLE {TABLE} ADD COLUMN IF NOT EXISTS search_vector tsvector "
    "GENERATED ALWAYS AS (to_tsvector('english'::regconfig, search_document)) STORED",
    f"CREATE INDEX IF NOT EXISTS {INDEX} ON {TABLE} USING GIN (search_vector)",
    f"DROP INDEX IF EXISTS {OLD_INDEX}",
    f"CREATE INDEX IF NOT EXISTS {COVER} ON {TABLE} (listing_id) "
    f"INCLUDE (primary_emotion, {FILTER_COLUMNS})",
    f"CREATE INDEX IF NOT EXISTS {EMOTION_COVER} ON {TABLE} (primary_emotion, listing_id) "
    f"INCLUDE ({FILTER_COLUMNS})",
    f"CREATE INDEX IF NOT EXISTS {BY_INTENSITY} ON {TABLE} (intensity, listing_id)",
    "CREATE TABLE IF NOT EXISTS marketplace_catalogue_generation "
    "(id smallint PRIMARY KEY CHECK (id = 1), n bigint NOT NULL)",
    "INSERT INTO marketplace_catalogue_generation (id, n) VALUES (1, 0) ON CONFLICT DO NOTHING",
    """
    CREATE OR REPLACE FUNCTION marketplace_catalogue_bump() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE marketplace_catalogue_generation SET n = n + 1 WHERE id = 1;
        RETURN NULL;
    END
    $$
    """,
    f"DROP TRIGGER IF EXISTS marketplace_catalogue_bump ON {TABLE}",
    f"CREATE TRIGGER marketplace_catalogue_bump AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
    f"ON {TABLE} FOR EACH STATEMENT EXECUTE FUNCTION marketplace_catalogue_bump()",
]

BACKWARD = [
    f"DROP TRIGGER IF EXISTS marketplace_catalogue_bump ON {TABLE}",
    "DROP FUNCTION IF EXISTS marketplace_catalogue_bump()",
    "DROP TABLE IF EXISTS marketplace_catalogue_generation",
    f"CREATE INDEX IF NOT EXISTS {OLD_INDEX} ON {TABLE} "
    "USING GIN (to_tsvector('english'::regconfig, search_document))",
    f"DROP INDEX IF EXISTS {INDEX}",
    f"DROP INDEX IF EXISTS {COVER}",
    f"DROP INDEX IF EXISTS {EMOTION_COVER}",
    f"DROP INDEX IF EXISTS {BY_INTENSITY}",
    f"ALTER TABLE {TABLE} DROP COLUMN IF EXISTS search_vector",
]


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for statement in statements:
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("marketplace", "0002_catalogue_fulltext")]
    operations = [migrations.RunPython(_run(FORWARD), _run(BACKWARD))]
