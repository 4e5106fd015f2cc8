"""Full-text search over the catalogue on PostgreSQL: a GIN index on the
English tsvector of CatalogueEntry.search_document. The catalogue query uses
the same expression, so PostgreSQL answers it from this index. Other
databases (SQLite under `make run`) skip it and search with LIKE."""

from django.db import migrations

INDEX = "marketplace_catalogue_fts"


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON marketplace_catalogueentry "
        "USING GIN (to_tsvector('english'::regconfig, search_document))"
    )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("marketplace", "0001_initial")]
    operations = [migrations.RunPython(create, drop)]
