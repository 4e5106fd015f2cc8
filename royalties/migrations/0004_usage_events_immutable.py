"""Accepted usage events are never edited or deleted (DESIGN.md: nothing is
lost). PostgreSQL refuses DELETE, and any UPDATE other than the tally
setting ``tally_batch_id`` once, from empty to a batch."""

from django.db import migrations

FORWARD = """
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
       OR (OLD.tally_batch_id IS NOT NULL AND NEW.tally_batch_id IS DISTINCT FROM OLD.tally_batch_id)
    THEN
        RAISE EXCEPTION 'usage event % was accepted as reported; send an adjustment instead',
            OLD.event_id USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER royalties_usage_event_guard BEFORE UPDATE OR DELETE ON royalties_usageevent
    FOR EACH ROW EXECUTE FUNCTION royalties_usage_event_guard();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS royalties_usage_event_guard ON royalties_usageevent;
DROP FUNCTION IF EXISTS royalties_usage_event_guard();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("royalties", "0003_usage")]
    operations = [migrations.RunPython(forward, backward)]
