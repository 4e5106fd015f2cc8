"""Posting to the ledger and reading balances. See DESIGN.md, "Money flows",
for the chart of accounts and what each event posts."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Sum

from accounts.models import Organization, PerformerProfile
from core.errors import Conflict, ValidationError
from core.services import audit_record, audit_records
from royalties.models import EntryLine, JournalEntry, LedgerAccount

PLATFORM_CASH = "platform:cash"
PLATFORM_REVENUE = "platform:revenue"

_KINDS = {
    PLATFORM_CASH: LedgerAccount.Kind.ASSET,
    PLATFORM_REVENUE: LedgerAccount.Kind.INCOME,
}


def platform_account(code: str, currency: str) -> LedgerAccount:
    return _account(code, currency, _KINDS[code])


def buyer_receivable(organization: Organization, currency: str) -> LedgerAccount:
    return _account(
        f"buyer:{organization.pk}:receivable",
        currency,
        LedgerAccount.Kind.ASSET,
        organization=organization,
    )


def performer_account(performer: PerformerProfile, bucket: str, currency: str) -> LedgerAccount:
    """``bucket`` is pending, available or in_transit."""
    if bucket not in {"pending", "available", "in_transit"}:
        raise ValueError(f"unknown performer bucket {bucket!r}")
    return _account(
        f"performer:{performer.pk}:{bucket}",
        currency,
        LedgerAccount.Kind.LIABILITY,
        performer=performer,
    )


def _account(code: str, currency: str, kind: str, **owner) -> LedgerAccount:
    account = LedgerAccount.objects.filter(code=code, currency=currency).first()
    if account is not None:
        return account
    try:
        with transaction.atomic():
            return LedgerAccount.objects.create(code=code, currency=currency, kind=kind, **owner)
    except IntegrityError:  # created concurrently
        return LedgerAccount.objects.get(code=code, currency=currency)


@dataclass(frozen=True)
class Line:
    account: LedgerAccount
    amount_minor: int  # debit positive, credit negative


def post_entry(
    *,
    kind: str,
    idempotency_key: str,
    lines: Sequence[Line],
    memo: str,
    source_type: str = "",
    source_id: str = "",
    reverses: JournalEntry | None = None,
) -> JournalEntry:
    """Post one balanced entry, exactly once per ``idempotency_key``: posting
    the same key again returns the entry already posted (and refuses if the
    lines differ, which would mean two different events share a key)."""
    lines = [line for line in lines if line.amount_minor != 0]
    _check_balanced(lines)
    with transaction.atomic():
        existing = JournalEntry.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            _check_same(existing, lines)
            return existing
        entry = JournalEntry.objects.create(
            kind=kind,
            memo=memo[:300],
            idempotency_key=idempotency_key,
            source_type=source_type,
            source_id=str(source_id),
            reverses=reverses,
        )
        EntryLine.objects.bulk_create(
            [
                EntryLine(
                    entry=entry,
                    account=line.account,
                    amount_minor=line.amount_minor,
                    currency=line.account.currency,
                )
                for line in lines
            ]
        )
        audit_record(action=f"ledger.{kind}", target=entry, data=_audit_data(entry, lines))
    return entry


@dataclass(frozen=True)
class EntrySpec:
    """One entry for ``post_entries``; the arguments of ``post_entry``."""

    kind: str
    idempotency_key: str
    lines: Sequence[Line]
    memo: str
    source_type: str = ""
    source_id: str = ""


def post_entries(specs: Sequence[EntrySpec]) -> list[JournalEntry]:
    """``post_entry`` for many entries at once, in a constant number of
    queries: the entries, their lines and their audit rows are each one
    INSERT. Same guarantees: each entry balances, and a key already posted
    returns the entry posted (refused if its lines differ). Returns the
    entries in the order of ``specs``."""
    specs = [
        EntrySpec(
            spec.kind,
            spec.idempotency_key,
            [line for line in spec.lines if line.amount_minor != 0],
            spec.memo[:300],
            spec.source_type,
            str(spec.source_id),
        )
        for spec in specs
    ]
    for spec in specs:
        _check_balanced(spec.lines)
    with transaction.atomic():
        existing = JournalEntry.objects.in_bulk(
            [spec.idempotency_key for spec in specs], field_name="idempotency_key"
        )
        for spec in specs:
            if spec.idempotency_key in existing:
                _check_same(existing[spec.idempotency_key], spec.lines)
        new = [spec for spec in specs if spec.idempotency_key not in existing]
        created = JournalEntry.objects.bulk_create(
            [
                JournalEntry(
                    kind=spec.kind,
                    memo=spec.memo,
                    idempotency_key=spec.idempotency_key,
                    source_type=spec.source_type,
                    source_id=spec.source_id,
                )
                for spec in new
            ]
        )
        EntryLine.objects.bulk_create(
            [
                EntryLine(
                    entry=entry,
                    account=line.account,
                    amount_minor=line.amount_minor,
                    currency=line.account.currency,
                )
                for entry, spec in zip(created, new, strict=True)
                for line in spec.lines
            ]
        )
        for kind in sorted({spec.kind for spec in new}):
            audit_records(
                action=f"ledger.{kind}",
                targets=[
                    (entry, _audit_data(entry, spec.lines))
                    for entry, spec in zip(created, new, strict=True)
                    if spec.kind == kind
                ],
            )
    posted = {entry.idempotency_key: entry for entry in created} | existing
    return [posted[spec.idempotency_key] for spec in specs]


def _audit_data(entry: JournalEntry, lines: Sequence[Line]) -> dict:
    return {
        "memo": entry.memo,
        "lines": [[line.account.code, line.amount_minor, line.account.currency] for line in lines],
    }


def _check_balanced(lines: Sequence[Line]) -> None:
    if len(lines) < 2:
        raise ValidationError(
            "A journal entry needs at least two non-zero lines.", code="ledger_unbalanced"
        )
    totals: dict[str, int] = defaultdict(int)
    for line in lines:
        if not isinstance(line.amount_minor, int) or isinstance(line.amount_minor, bool):
            raise ValidationError(
                "Ledger amounts are integers in minor units.", code="ledger_not_integer"
            )
        totals[line.account.currency] += line.amount_minor
    unbalanced = {c: t for c, t in totals.items() if t != 0}
    if unbalanced:
        raise ValidationError(
            f"The entry does not balance: {unbalanced}.",
            code="ledger_unbalanced",
            details={"totals": unbalanced},
        )


def _check_same(entry: JournalEntry, lines: Sequence[Line]) -> None:
    posted = sorted(entry.lines.values_list("account_id", "amount_minor"))
    wanted = sorted((line.account.pk, line.amount_minor) for line in lines)
    if posted != wanted:
        raise Conflict(
            f"Entry {entry.idempotency_key} was already posted with other amounts.",
            code="ledger_idempotency_conflict",
        )


def reverse_entry(
    *, entry: JournalEntry, memo: str, idempotency_key: str | None = None
) -> JournalEntry:
    """Post the mirror image of ``entry``. An entry is reversed at most once."""
    if hasattr(entry, "reversed_by"):
        return entry.reversed_by
    lines = [
        Line(line.account, -line.amount_minor) for line in entry.lines.select_related("account")
    ]
    return post_entry(
        kind=JournalEntry.Kind.REVERSAL,
        idempotency_key=idempotency_key or f"reversal:{entry.pk}",
        lines=lines,
        memo=memo,
        source_type="journal_entry",
        source_id=str(entry.pk),
        reverses=entry,
    )


def balance(account: LedgerAccount) -> int:
    """The account's balance in minor units (debits minus credits), derived from its lines."""
    return account.lines.aggregate(total=Sum("amount_minor"))["total"] or 0


def balances_by_code(prefix: str = "") -> dict[tuple[str, str], int]:
    rows = (
        EntryLine.objects.filter(account__code__startswith=prefix)
        .values_list("account__code", "currency")
        .annotate(total=Sum("amount_minor"))
    )
    return {(code, currency): total for code, currency, total in rows}
