"""The ledger balances and is append-only — in Python and in the database."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from core.errors import Conflict, ValidationError
from royalties import ledger
from royalties.ledger import Line
from royalties.models import EntryLine, JournalEntry
from tests.factories import make_performer

pytestmark = pytest.mark.django_db


@pytest.fixture
def accounts(db):
    performer = make_performer(email="p@example.com")
    return {
        "cash": ledger.platform_account(ledger.PLATFORM_CASH, "USD"),
        "revenue": ledger.platform_account(ledger.PLATFORM_REVENUE, "USD"),
        "available": ledger.performer_account(performer, "available", "USD"),
    }


def _sale(accounts, key="sale:1"):
    return ledger.post_entry(
        kind=JournalEntry.Kind.SALE,
        idempotency_key=key,
        memo="License sale",
        lines=[
            Line(accounts["cash"], 50_000),
            Line(accounts["available"], -40_000),
            Line(accounts["revenue"], -10_000),
        ],
    )


def test_a_balanced_entry_posts_and_balances_follow(accounts):
    entry = _sale(accounts)
    assert entry.lines.count() == 3
    assert ledger.balance(accounts["cash"]) == 50_000
    assert ledger.balance(accounts["available"]) == -40_000
    assert ledger.balance(accounts["revenue"]) == -10_000


def test_posting_the_same_event_twice_posts_once(accounts):
    first = _sale(accounts)
    again = _sale(accounts)
    assert first.pk == again.pk
    assert JournalEntry.objects.count() == 1
    assert ledger.balance(accounts["cash"]) == 50_000


def test_the_same_key_with_other_amounts_is_refused(accounts):
    _sale(accounts)
    with pytest.raises(Conflict):
        ledger.post_entry(
            kind=JournalEntry.Kind.SALE,
            idempotency_key="sale:1",
            memo="x",
            lines=[Line(accounts["cash"], 1), Line(accounts["revenue"], -1)],
        )


def test_unbalanced_entries_are_refused_before_the_database(accounts):
    with pytest.raises(ValidationError) as caught:
        ledger.post_entry(
            kind=JournalEntry.Kind.SALE,
            idempotency_key="bad",
            memo="x",
            lines=[Line(accounts["cash"], 100), Line(accounts["revenue"], -99)],
        )
    assert caught.value.code == "ledger_unbalanced"
    assert not JournalEntry.objects.exists()


def _immediate():
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def test_the_database_refuses_an_unbalanced_entry(accounts):
    with pytest.raises(DatabaseError, match="does not balance"), transaction.atomic():
        entry = JournalEntry.objects.create(kind="sale", memo="raw", idempotency_key="raw")
        EntryLine.objects.create(
            entry=entry, account=accounts["cash"], amount_minor=100, currency="USD"
        )
        EntryLine.objects.create(
            entry=entry, account=accounts["revenue"], amount_minor=-1, currency="USD"
        )
        _immediate()


def test_the_database_refuses_an_entry_without_lines(accounts):
    with pytest.raises(DatabaseError, match="at least two"), transaction.atomic():
        JournalEntry.objects.create(kind="sale", memo="raw", idempotency_key="empty")
        _immediate()


def test_the_database_refuses_a_line_in_another_currency(accounts):
    with pytest.raises(DatabaseError, match="another currency"), transaction.atomic():
        entry = JournalEntry.objects.create(kind="sale", memo="raw", idempotency_key="fx")
        EntryLine.objects.create(
            entry=entry, account=accounts["cash"], amount_minor=100, currency="EUR"
        )
        EntryLine.objects.create(
            entry=entry, account=accounts["revenue"], amount_minor=-100, currency="EUR"
        )
        _immediate()


@pytest.mark.parametrize("operation", ["update", "delete"])
def test_the_database_refuses_edits(accounts, operation):
    entry = _sale(accounts)
    line = entry.lines.first()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        if operation == "update":
            EntryLine.objects.filter(pk=line.pk).update(amount_minor=1)
        else:
            EntryLine.objects.filter(pk=line.pk).delete()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        JournalEntry.objects.filter(pk=entry.pk).update(memo="changed")


def test_reversal_mirrors_the_entry_once(accounts):
    entry = _sale(accounts)
    reversal = ledger.reverse_entry(entry=entry, memo="Refund")
    assert reversal.reverses == entry
    assert ledger.balance(accounts["cash"]) == 0
    assert ledger.balance(accounts["available"]) == 0
    assert ledger.reverse_entry(entry=entry, memo="Refund again").pk == reversal.pk
    assert JournalEntry.objects.count() == 2
