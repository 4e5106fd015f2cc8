"""The ledger: double-entry, in integer minor units, append-only.

Every money movement is one JournalEntry whose EntryLines sum to zero per
currency (debits positive, credits negative). PostgreSQL enforces this at
commit with a deferred constraint trigger, and refuses any UPDATE or DELETE
of entries and lines (migration 0002); balances are sums of lines. Mistakes
are corrected by a reversing entry, never by an edit.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from accounts.models import Organization, PerformerProfile


class LedgerAccount(models.Model):
    class Kind(models.TextChoices):
        ASSET = "asset", "Asset"
        LIABILITY = "liability", "Liability"
        INCOME = "income", "Income"

    # e.g. "platform:cash", "platform:revenue", "buyer:12:receivable",
    # "performer:7:pending", "performer:7:available", "performer:7:in_transit"
    code = models.CharField(max_length=80)
    currency = models.CharField(max_length=3)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    performer = models.ForeignKey(
        PerformerProfile, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code", "currency"]
        constraints = [
            models.UniqueConstraint(fields=["code", "currency"], name="ledger_account_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.code} ({self.currency})"


class JournalEntry(models.Model):
    class Kind(models.TextChoices):
        SALE = "sale", "License sale"
        ROYALTY_ACCRUAL = "royalty_accrual", "Royalty accrued"
        ROYALTY_INVOICE_PAID = "royalty_invoice_paid", "Royalty invoice paid"
        PAYOUT_CREATED = "payout_created", "Payout created"
        PAYOUT_CONFIRMED = "payout_confirmed", "Payout confirmed"
        PAYOUT_FAILED = "payout_failed", "Payout failed or reversed"
        REFUND = "refund", "Refund"
        REVERSAL = "reversal", "Reversal"

    kind = models.CharField(max_length=24, choices=Kind.choices)
    memo = models.CharField(max_length=300)
    # What caused the posting, e.g. "order_line:17". Posting the same key
    # twice returns the first entry: each event is posted exactly once.
    idempotency_key = models.CharField(max_length=120, unique=True)
    source_type = models.CharField(max_length=40, blank=True)
    source_id = models.CharField(max_length=64, blank=True)
    reverses = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "journal entries"
        indexes = [models.Index(fields=["source_type", "source_id"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.kind}: {self.memo}"


class EntryLine(models.Model):
    entry = models.ForeignKey(JournalEntry, on_delete=models.PROTECT, related_name="lines")
    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="lines")
    # Debit positive, credit negative, in minor units of `currency`.
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)

    class Meta:
        ordering = ["entry", "id"]
        constraints = [
            models.CheckConstraint(condition=~Q(amount_minor=0), name="entry_line_not_zero"),
        ]
        indexes = [models.Index(fields=["account", "entry"])]

    def __str__(self) -> str:
        return f"{self.account.code} {self.amount_minor:+d} {self.currency}"
