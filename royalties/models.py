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


class UsageEvent(models.Model):
    """A buyer's report of downstream use under a license. The reported
    fields never change after they are accepted (PostgreSQL refuses it,
    migration 0004); a correction is a new event that ``adjusts`` the
    original. Rows are never written again either, not even by the tally:
    an event is tallied once its id is at or below the tally's watermark
    (``TallyCursor``, royalties.watermark), and the batch that counted it
    is the one whose id range holds its id."""

    class Metric(models.TextChoices):
        TRAINING_RUN = "training_run", "Training run"
        FINE_TUNE_RUN = "fine_tune_run", "Fine-tune run"
        EVALUATION_RUN = "evaluation_run", "Evaluation run"
        INFERENCE_CALLS = "inference_calls", "Inference calls"
        DEPLOYMENT = "deployment", "Deployment"
        DOWNSTREAM_REVENUE = "downstream_revenue", "Downstream revenue"

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    license = models.ForeignKey(
        "licensing.License", on_delete=models.PROTECT, related_name="usage_events"
    )
    event_id = models.CharField(max_length=100)
    metric = models.CharField(max_length=20, choices=Metric.choices)
    quantity = models.BigIntegerField(default=0)
    amount_minor = models.BigIntegerField(null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    occurred_at = models.DateTimeField()
    model = models.CharField(max_length=200, blank=True)
    note = models.TextField(max_length=2000, blank=True)
    adjusts = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="adjustments"
    )
    # SHA-256 of the event as sent: the same id with the same body is a
    # harmless duplicate, with another body a conflict.
    body_sha256 = models.CharField(max_length=64)
    api_key_prefix = models.CharField(max_length=32, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "event_id"], name="usage_event_id_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["license", "metric"]),
            models.Index(fields=["organization", "-received_at"]),
            # A license's events past the tally's watermark (what still waits
            # for the tally, on dashboards) are one range of this index.
            models.Index(fields=["license", "id"], name="usage_event_license_id"),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} ({self.metric})"


class TallyBatch(models.Model):
    """One tally pass: it counted every usage event with
    ``from_id < id <= through_id``."""

    started_at = models.DateTimeField(auto_now_add=True)
    worker = models.CharField(max_length=200, blank=True)
    from_id = models.BigIntegerField(default=0)  # exclusive
    through_id = models.BigIntegerField(default=0)  # inclusive
    event_count = models.PositiveIntegerField(default=0)
    license_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at", "-id"]
        verbose_name_plural = "tally batches"

    def __str__(self) -> str:
        return f"Tally {self.pk}: {self.event_count} events"


class TallyCursor(models.Model):
    """One row (pk 1): the highest usage event id already tallied. The tally
    locks it for the whole of its transaction, so passes never overlap, and
    moves it in the same transaction as the royalties it posts."""

    tallied_through_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Tallied through event {self.tallied_through_id}"


class LicenseUsageTotals(models.Model):
    """Running totals per license, advanced only by the tally inside the
    transaction that posts to the ledger. Royalties are computed on these
    cumulative figures, so any batching of events gives the same result."""

    license = models.OneToOneField(
        "licensing.License", on_delete=models.PROTECT, related_name="usage_totals"
    )
    quantities = models.JSONField(default=dict)  # metric → total quantity
    revenue_minor = models.BigIntegerField(default=0)
    royalty_owed_minor = models.BigIntegerField(default=0)  # everything accrued so far
    fee_minor = models.BigIntegerField(default=0)
    # metric → {"owed", "fee", "net": {performer id: amount}, "gross": {performer id: amount}},
    # every figure cumulative (accrued so far).
    by_metric = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "license usage totals"

    def __str__(self) -> str:
        return f"Totals of license {self.license_id}"


class CapBreach(models.Model):
    """Usage beyond a reuse cap: recorded (the usage still counts) and shown
    to staff and the performers as a possible breach."""

    license = models.ForeignKey(
        "licensing.License", on_delete=models.PROTECT, related_name="cap_breaches"
    )
    cap = models.CharField(max_length=40)
    limit = models.BigIntegerField()
    reported = models.BigIntegerField()
    detected_at = models.DateTimeField(auto_now_add=True)
    tally_batch = models.ForeignKey(TallyBatch, on_delete=models.PROTECT, related_name="+")
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-detected_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["license", "cap"], name="cap_breach_once_per_cap"),
        ]

    def __str__(self) -> str:
        return f"{self.license_id}: {self.cap} {self.reported}/{self.limit}"


class RoyaltyAccrual(models.Model):
    """What one tally added to a license's royalties, per metric (gross, in
    the license's currency, before the platform fee): the detail behind the
    journal entry, used by invoices and statements."""

    license = models.ForeignKey(
        "licensing.License", on_delete=models.PROTECT, related_name="accruals"
    )
    tally_batch = models.ForeignKey(TallyBatch, on_delete=models.PROTECT, related_name="accruals")
    journal_entry = models.ForeignKey(
        JournalEntry, on_delete=models.PROTECT, related_name="accruals"
    )
    metric = models.CharField(max_length=20)
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    created_at = models.DateTimeField(auto_now_add=True)
    invoice_line = models.ForeignKey(
        "RoyaltyInvoiceLine",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="accruals",
    )

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.license_id} {self.metric} {self.amount_minor:+d} {self.currency}"


class RoyaltyInvoice(models.Model):
    """A monthly invoice to a buyer organization for the royalties it owes."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        OPEN = "open", "Open"
        PAID = "paid", "Paid"
        FAILED = "failed", "Payment failed"
        VOID = "void", "Void"

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="royalty_invoices"
    )
    period = models.DateField(help_text="First day of the month invoiced.")
    currency = models.CharField(max_length=3)
    amount_minor = models.BigIntegerField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.DRAFT)
    stripe_invoice_id = models.CharField(max_length=255, blank=True, db_index=True)
    hosted_url = models.URLField(max_length=1000, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    failure_count = models.PositiveIntegerField(default=0)
    overdue_at = models.DateTimeField(
        null=True, blank=True, help_text="When it was first found unpaid past its due date."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-period", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "period", "currency"], name="royalty_invoice_once_per_month"
            ),
        ]

    def __str__(self) -> str:
        return f"Royalties {self.period:%Y-%m} for {self.organization_id}"


class RoyaltySuspension(models.Model):
    """A license suspended because an invoice of its organization went
    unpaid (ROYALTY_SUSPEND_LICENSES_ON_FAILED_PAYMENT). Paying the invoice
    lifts it; the license becomes active again once no unpaid invoice holds
    it and nothing else suspended it meanwhile."""

    invoice = models.ForeignKey(
        RoyaltyInvoice, on_delete=models.PROTECT, related_name="suspensions"
    )
    license = models.ForeignKey(
        "licensing.License", on_delete=models.PROTECT, related_name="royalty_suspensions"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    lifted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["invoice", "license"], name="royalty_suspension_once_per_invoice"
            ),
        ]

    def __str__(self) -> str:
        return f"License {self.license_id} held by invoice {self.invoice_id}"


class RoyaltyInvoiceLine(models.Model):
    invoice = models.ForeignKey(RoyaltyInvoice, on_delete=models.PROTECT, related_name="lines")
    license = models.ForeignKey("licensing.License", on_delete=models.PROTECT, related_name="+")
    metric = models.CharField(max_length=20)
    amount_minor = models.BigIntegerField()
    stripe_item_id = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["invoice", "id"]

    def __str__(self) -> str:
        return f"{self.invoice_id}: {self.license_id} {self.metric} {self.amount_minor}"


class PerformerEarning(models.Model):
    """A performer's part of one journal entry, before and after the platform
    fee: the sub-ledger statements are built from. ``net_minor`` always
    equals the performer's line in the entry (ledger_check verifies it)."""

    class Kind(models.TextChoices):
        SALE = "sale", "License sale"
        ROYALTY = "royalty", "Royalty"
        REFUND = "refund", "Refund"

    performer = models.ForeignKey(
        PerformerProfile, on_delete=models.PROTECT, related_name="earnings"
    )
    journal_entry = models.ForeignKey(
        JournalEntry, on_delete=models.PROTECT, related_name="earnings"
    )
    license = models.ForeignKey("licensing.License", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    metric = models.CharField(max_length=20, blank=True)  # royalties only
    gross_minor = models.BigIntegerField()
    fee_minor = models.BigIntegerField()
    net_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["performer", "created_at"])]

    def __str__(self) -> str:
        return f"{self.performer_id} {self.kind} {self.net_minor:+d} {self.currency}"
