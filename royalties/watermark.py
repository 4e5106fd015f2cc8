"""Which usage events the tally has counted: every event whose id is at or
below one watermark, ``TallyCursor.tallied_through_id``.

Ids come from the table's sequence when a row is inserted, but transactions
commit in any order: a transaction that drew id 41 may commit after one that
drew 42. So the highest id visible now is not, on its own, a safe place to
move the watermark to: event 41 could still appear below it and never be
counted. An advisory lock closes that gap:

* every transaction that inserts usage events first takes
  ``pg_advisory_xact_lock_shared(INGEST_LOCK_KEY)`` and keeps it until it
  commits or rolls back (inserting transactions never wait for each other);
* the tally takes ``pg_advisory_lock(INGEST_LOCK_KEY)`` exclusively, which
  waits until every inserting transaction in flight has ended and holds new
  ones back; reads ``max(id)`` in a statement of its own (READ COMMITTED: a
  fresh snapshot, which sees those commits); and releases the lock at once.

While the lock is held no insert is in flight, so every id at or below that
maximum is committed (or rolled back for good), and every later insert draws
a larger id from the sequence (it caches one value at a time, PostgreSQL's
default, so ids follow the order of the draws across sessions). Ingest waits
at most for the tally's wait plus one ``max(id)`` on the primary key.

On SQLite (the embedded database of ``make run``) one writer at a time holds
the whole database and ids are assigned under that lock, so the highest
visible id is already safe.
"""

from __future__ import annotations

from django.db import connection, transaction
from django.db.models import BigIntegerField, Q, Subquery, Value
from django.db.models.functions import Coalesce

# Any fixed bigint, the same in every process: the bytes of "rsdl-use".
INGEST_LOCK_KEY = 0x7273646C2D757365

CURSOR_PK = 1


def ingest_lock_shared(cursor) -> None:
    """Call inside the transaction that inserts usage events, before the
    INSERT: the tally's watermark waits for this transaction to end."""
    if connection.vendor == "postgresql":
        cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [INGEST_LOCK_KEY])


def committed_high_water() -> int:
    """The highest usage event id below which no event can still appear.

    Call inside the tally's transaction. The exclusive lock is a session
    lock (released at once, not at commit), so it must be released whatever
    happens: the read runs in a savepoint, which leaves the transaction
    usable for the unlock even when the read fails or is cancelled; if the
    unlock itself fails, the connection is closed, and closing a session
    releases its locks."""
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            cursor.execute("SELECT coalesce(max(id), 0) FROM royalties_usageevent")
            return int(cursor.fetchone()[0])
        cursor.execute("SELECT pg_advisory_lock(%s)", [INGEST_LOCK_KEY])
        try:
            with transaction.atomic():
                # A statement of its own, after the lock: its snapshot sees
                # every insert that the lock waited for (READ COMMITTED only).
                cursor.execute(
                    "SELECT coalesce(max(id), 0), current_setting('transaction_isolation') "
                    "FROM royalties_usageevent"
                )
                high, isolation = cursor.fetchone()
        finally:
            try:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [INGEST_LOCK_KEY])
            except Exception:
                connection.close()
                raise
    if isolation != "read committed":
        raise RuntimeError(
            f"The tally needs READ COMMITTED transactions, not {isolation}: a snapshot taken "
            "before the ingest lock would miss events committed while it waited."
        )
    return int(high)


def sequence_problems() -> list[str]:
    """The watermark's assumptions about the id sequence, checked from the
    database (``ledger_check``): ids are drawn one at a time in order."""
    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT cache_size, increment_by FROM pg_sequences "
            "WHERE sequencename = 'royalties_usageevent_id_seq'"
        )
        row = cursor.fetchone()
    if row is None:
        return ["the usage event id sequence royalties_usageevent_id_seq is missing"]
    cache_size, increment = row
    problems = []
    if cache_size != 1:
        problems.append(
            f"royalties_usageevent_id_seq caches {cache_size} values: sessions would draw ids "
            "out of order and the tally could pass an event over (set CACHE 1)"
        )
    if increment <= 0:
        problems.append("royalties_usageevent_id_seq does not increase")
    return problems


def tallied_through():
    """The watermark as an SQL expression (0 before any tally), so that
    "tallied" filters and counts cost no extra query."""
    from royalties.models import TallyCursor

    return Coalesce(
        Subquery(TallyCursor.objects.filter(pk=CURSOR_PK).values("tallied_through_id")[:1]),
        Value(0),
        output_field=BigIntegerField(),
    )


def tallied_q(prefix: str = "") -> Q:
    """Usage events already counted by a tally (``prefix`` for a relation,
    e.g. ``"usage_events__"``)."""
    return Q(**{f"{prefix}id__lte": tallied_through()})


def untallied_q(prefix: str = "") -> Q:
    return Q(**{f"{prefix}id__gt": tallied_through()})


def tallied_through_id() -> int:
    from royalties.models import TallyCursor

    cursor = TallyCursor.objects.filter(pk=CURSOR_PK)
    return cursor.values_list("tallied_through_id", flat=True).first() or 0
