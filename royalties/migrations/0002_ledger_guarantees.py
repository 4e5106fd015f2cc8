"""The database's own guarantees for the ledger.

PostgreSQL:
- a deferred constraint trigger checks, at commit, that every journal entry
  has at least two lines, that its lines sum to zero in each currency, and
  that each line's currency is its account's currency;
- triggers refuse UPDATE and DELETE of entries and lines: the ledger is
  append-only, corrections are reversing entries.
SQLite (`make run` only): the append-only triggers; balance is checked by
royalties.ledger before insert.
"""

from django.db import migrations

PG_FORWARD = """
CREATE OR REPLACE FUNCTION royalties_check_entry() RETURNS trigger AS $$
DECLARE
    entry bigint;
    line_count integer;
    unbalanced record;
BEGIN
    IF TG_TABLE_NAME = 'royalties_journalentry' THEN
        entry := NEW.id;
    ELSE
        entry := NEW.entry_id;
    END IF;
    SELECT count(*) INTO line_count FROM royalties_entryline WHERE entry_id = entry;
    IF line_count < 2 THEN
        RAISE EXCEPTION 'journal entry % has % line(s); an entry needs at least two', entry, line_count
            USING ERRCODE = 'check_violation';
    END IF;
    FOR unbalanced IN
        SELECT currency, sum(amount_minor) AS total FROM royalties_entryline
        WHERE entry_id = entry GROUP BY currency HAVING sum(amount_minor) <> 0
    LOOP
        RAISE EXCEPTION 'journal entry % does not balance in %: lines sum to %',
            entry, unbalanced.currency, unbalanced.total USING ERRCODE = 'check_violation';
    END LOOP;
    IF EXISTS (
        SELECT 1 FROM royalties_entryline l JOIN royalties_ledgeraccount a ON a.id = l.account_id
        WHERE l.entry_id = entry AND l.currency <> a.currency
    ) THEN
        RAISE EXCEPTION 'journal entry % posts to an account in another currency', entry
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER royalties_entryline_balanced
    AFTER INSERT ON royalties_entryline DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION royalties_check_entry();
CREATE CONSTRAINT TRIGGER royalties_journalentry_has_lines
    AFTER INSERT ON royalties_journalentry DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION royalties_check_entry();

CREATE OR REPLACE FUNCTION royalties_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only: % on % is refused; post a reversing entry',
        TG_OP, TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER royalties_entryline_append_only BEFORE UPDATE OR DELETE ON royalties_entryline
    FOR EACH ROW EXECUTE FUNCTION royalties_append_only();
CREATE TRIGGER royalties_journalentry_append_only BEFORE UPDATE OR DELETE ON royalties_journalentry
    FOR EACH ROW EXECUTE FUNCTION royalties_append_only();
"""

PG_BACKWARD = """
DROP TRIGGER IF EXISTS royalties_journalentry_append_only ON royalties_journalentry;
DROP TRIGGER IF EXISTS royalties_entryline_append_only ON royalties_entryline;
DROP FUNCTION IF EXISTS royalties_append_only();
DROP TRIGGER IF EXISTS royalties_journalentry_has_lines ON royalties_journalentry;
DROP TRIGGER IF EXISTS royalties_entryline_balanced ON royalties_entryline;
DROP FUNCTION IF EXISTS royalties_check_entry();
"""

SQLITE_FORWARD = [
    f"""CREATE TRIGGER IF NOT EXISTS royalties_{table}_no_{op.lower()}
        BEFORE {op} ON royalties_{table}
        BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;"""
    for table in ("entryline", "journalentry")
    for op in ("UPDATE", "DELETE")
]
SQLITE_BACKWARD = [
    f"DROP TRIGGER IF EXISTS royalties_{table}_no_{op.lower()};"
    for table in ("entryline", "journalentry")
    for op in ("update", "delete")
]


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_FORWARD, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_FORWARD:
            schema_editor.execute(statement)


def backward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_BACKWARD, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_BACKWARD:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("royalties", "0001_ledger")]
    operations = [migrations.RunPython(forward, backward)]
