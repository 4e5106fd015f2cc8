"""A license's terms never change after purchase (DESIGN.md invariant 5).

PostgreSQL refuses any UPDATE that changes a license's organization, order
line, listing, terms, price, currency or term; status and reminders may
change. Order lines (the price and terms frozen at checkout) cannot be
changed at all once written. Other databases rely on the services alone.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION licensing_license_terms_frozen() RETURNS trigger AS $$
BEGIN
    IF NEW.organization_id IS DISTINCT FROM OLD.organization_id
       OR NEW.order_line_id IS DISTINCT FROM OLD.order_line_id
       OR NEW.listing_id IS DISTINCT FROM OLD.listing_id
       OR NEW.terms::text IS DISTINCT FROM OLD.terms::text
       OR NEW.price_minor IS DISTINCT FROM OLD.price_minor
       OR NEW.currency IS DISTINCT FROM OLD.currency
       OR NEW.starts_at IS DISTINCT FROM OLD.starts_at
       OR NEW.ends_at IS DISTINCT FROM OLD.ends_at
       OR NEW.uid IS DISTINCT FROM OLD.uid THEN
        RAISE EXCEPTION 'license % was sold under fixed terms; they cannot change', OLD.uid
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER licensing_license_terms_frozen BEFORE UPDATE ON licensing_license
    FOR EACH ROW EXECUTE FUNCTION licensing_license_terms_frozen();

CREATE OR REPLACE FUNCTION licensing_orderline_frozen() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'order lines are frozen once written' USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER licensing_orderline_frozen BEFORE UPDATE ON licensing_orderline
    FOR EACH ROW EXECUTE FUNCTION licensing_orderline_frozen();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS licensing_orderline_frozen ON licensing_orderline;
DROP FUNCTION IF EXISTS licensing_orderline_frozen();
DROP TRIGGER IF EXISTS licensing_license_terms_frozen ON licensing_license;
DROP FUNCTION IF EXISTS licensing_license_terms_frozen();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("licensing", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]
