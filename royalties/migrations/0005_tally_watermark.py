"""The tally stops writing to usage events.

"Tallied" becomes an id watermark (TallyCursor, royalties/watermark.py) and
each TallyBatch records the id range it counted, so UsageEvent.tally_batch
and the partial index of untallied events go (an index on (license, id)
finds a license's events past the watermark), and PostgreSQL now refuses
every UPDATE and DELETE of a usage event.

Existing data: the watermark starts at the highest tallied event, and each
old batch's range spans its events. That is only sound if no untallied event
lies below a tallied one (the old tally marked licenses, not id ranges);
where one does, the migration stops and asks for ``manage.py tally_usage``
(with the code before this change) first, so no event is lost or counted
twice.
"""

from django.db import migrations, models
from django.db.models import Max, Min

GUARD = """
CREATE OR REPLACE FUNCTION royalties_usage_event_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'usage events are never deleted' USING ERRCODE = 'restrict_violation';
    END IF;
    RAISE EXCEPTION 'usage event % was accepted as reported; send an adjustment instead',
        OLD.event_id USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;
"""

# Migration 0004's function, for going back.
OLD_GUARD = """
CREATE OR REPLACE FUNCTION royalties_usage_event_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'usage events are never deleted' USING ERRCODE = 'restrict_violation';
    END IF;
    IF (NEW.organization_id, NEW.license_id, NEW.event_id, NEW.metric, NEW.quantity,
        NEW.amount_minor, NEW.currency, NEW.occurred_at, NEW.model, NEW.note, NEW.adjusts_id,
        NEW.body_sha256, NEW.api_key_prefix, NEW.received_at)
       IS DISTINCT FROM
       (OLD.organization_id, OLD.license_id, OLD.event_id, OLD.metric, OLD.quantity,
        OLD.amount_minor, OLD.currency, OLD.occurred_at, OLD.model, OLD.note, OLD.adjusts_id,
        OLD.body_sha256, OLD.api_key_prefix, OLD.received_at)
       OR (OLD.tally_batch_id IS NOT NULL
           AND NEW.tally_batch_id IS DISTINCT FROM OLD.tally_batch_id)
    THEN
        RAISE EXCEPTION 'usage event % was accepted as reported; send an adjustment instead',
            OLD.event_id USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
"""


def watermark_from_marks(apps, schema_editor):
    UsageEvent = apps.get_model("royalties", "UsageEvent")
    TallyBatch = apps.get_model("royalties", "TallyBatch")
    TallyCursor = apps.get_model("royalties", "TallyCursor")
    if schema_editor.connection.vendor == "postgresql":
        # No event may arrive, and no old tally mark it, while the watermark
        # is taken from the marks. (Stop the previous release's web and
        # worker processes before migrating: they insert without the ingest
        # lock this release relies on.)
        schema_editor.execute("LOCK TABLE royalties_usageevent IN EXCLUSIVE MODE", params=None)
    through = UsageEvent.objects.filter(tally_batch__isnull=False).aggregate(m=Max("id"))["m"] or 0
    if UsageEvent.objects.filter(tally_batch__isnull=True, id__lt=through).exists():
        raise RuntimeError(
            "Some untallied usage events lie below tallied ones: run `manage.py tally_usage` "
            "to completion with the previous release, then migrate again."
        )
    spans = sorted(
        (row["low"] - 1, row["high"], row["tally_batch_id"])
        for row in UsageEvent.objects.filter(tally_batch__isnull=False)
        .values("tally_batch_id")
        .annotate(low=Min("id"), high=Max("id"))
        .order_by()
    )
    # The old tally marked licenses, not id ranges, so two batches' events
    # may interleave. Ranges are recorded only where they are disjoint (a
    # batch left at 0..0 counted events before ranges existed).
    disjoint = all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))
    if disjoint:
        for from_id, through_id, batch_id in spans:
            TallyBatch.objects.filter(pk=batch_id).update(from_id=from_id, through_id=through_id)
    TallyCursor.objects.create(pk=1, tallied_through_id=through)


def marks_from_watermark(apps, schema_editor):
    UsageEvent = apps.get_model("royalties", "UsageEvent")
    TallyBatch = apps.get_model("royalties", "TallyBatch")
    TallyCursor = apps.get_model("royalties", "TallyCursor")
    for batch in TallyBatch.objects.filter(through_id__gt=0).order_by("id"):
        UsageEvent.objects.filter(
            id__gt=batch.from_id, id__lte=batch.through_id, tally_batch__isnull=True
        ).update(tally_batch=batch)
    # Events below the watermark counted by a batch without a range.
    through = TallyCursor.objects.filter(pk=1).values_list("tallied_through_id", flat=True).first()
    unranged = TallyBatch.objects.filter(through_id=0).order_by("-id").first()
    if through and unranged:
        UsageEvent.objects.filter(id__lte=through, tally_batch__isnull=True).update(
            tally_batch=unranged
        )


def strict_guard(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(GUARD, params=None)


def old_guard(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(OLD_GUARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("royalties", "0004_usage_events_immutable")]

    operations = [
        migrations.CreateModel(
            name="TallyCursor",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("tallied_through_id", models.BigIntegerField(default=0)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
        ),
        migrations.AddField(
            model_name="tallybatch",
            name="from_id",
            field=models.BigIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="tallybatch",
            name="through_id",
            field=models.BigIntegerField(default=0),
        ),
        migrations.RunPython(watermark_from_marks, marks_from_watermark),
        migrations.RunPython(strict_guard, old_guard),
        migrations.RemoveIndex(model_name="usageevent", name="usage_event_untallied"),
        migrations.RemoveField(model_name="usageevent", name="tally_batch"),
        migrations.AddIndex(
            model_name="usageevent",
            index=models.Index(fields=["license", "id"], name="usage_event_license_id"),
        ),
    ]
