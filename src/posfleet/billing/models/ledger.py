"""The double-entry ledger: accounts, journals and their entries, integer fen, append-only.

Sign convention: an entry's ``amount_fen`` is positive for a debit and negative for a credit, so every
journal's entries sum to zero. The database refuses an unbalanced or incomplete journal (SQLite: a
trigger when the journal's last declared entry arrives; PostgreSQL: one check at commit of every
journal the transaction wrote) and any UPDATE or DELETE of an entry. Corrections are reversing
journals. Every reference is a foreign key on both databases (ADR 0019).
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _


class AccountKind(models.TextChoices):
    # Per merchant
    SETTLEMENT_PAYABLE = "settlement_payable", _("settlement payable")  # takings we owe the merchant
    DEPOSIT_HELD = "deposit_held", _("deposit held")
    FEES_RECEIVABLE = "fees_receivable", _("fees receivable")  # service/SIM fees the merchant owes
    PENALTIES_RECEIVABLE = "penalties_receivable", _("penalties receivable")
    REFUNDS_PAYABLE = "refunds_payable", _("refunds payable")
    # Provider
    FEE_REVENUE = "fee_revenue", _("fee revenue")
    PENALTY_REVENUE = "penalty_revenue", _("penalty revenue")
    BANK_CLEARING = "bank_clearing", _("bank clearing")  # money at the bank, in and out
    # An expense: what the provider credits merchants for devices returned as new (closure).
    DEVICE_RECOVERY = "device_recovery", _("device recovery")
    # Per agent (reserved for commissions)
    COMMISSION_PAYABLE = "commission_payable", _("commission payable")


# Accounts whose natural balance is a debit (assets, expenses); the others are credits (liabilities,
# revenue).
DEBIT_NORMAL = frozenset(
    {
        AccountKind.BANK_CLEARING,
        AccountKind.FEES_RECEIVABLE,
        AccountKind.PENALTIES_RECEIVABLE,
        AccountKind.DEVICE_RECOVERY,
    }
)


class Account(models.Model):
    organisation = models.ForeignKey("iam.Organisation", on_delete=models.PROTECT, related_name="accounts")
    kind = models.CharField(_("kind"), max_length=24, choices=AccountKind.choices)
    # Sum of this account's entries (debit +, credit −), kept in the posting transaction;
    # `posfleet ledger verify` proves it equal to the entries.
    balance_fen = models.BigIntegerField(_("balance (fen)"), default=0)

    class Meta:
        ordering = ["organisation_id", "kind"]
        verbose_name = _("account")
        verbose_name_plural = _("accounts")
        constraints = [
            models.UniqueConstraint(fields=["organisation", "kind"], name="account_per_owner_kind")
        ]

    def __str__(self) -> str:
        return f"{self.organisation_id}:{self.kind}"

    @property
    def natural_balance_fen(self) -> int:
        """The balance as people read it: positive when an asset holds or a liability owes money."""
        return self.balance_fen if self.kind in DEBIT_NORMAL else -self.balance_fen


class JournalKind(models.TextChoices):
    CAPTURE = "capture", _("transactions captured")
    REFUND = "refund", _("refund or reversal")
    SETTLEMENT = "settlement", _("settlement")
    SERVICE_FEE = "service_fee", _("service fee charged")
    DEPOSIT_COLLECT = "deposit_collect", _("deposit collected")
    DEPOSIT_REFUND = "deposit_refund", _("deposit refunded")
    PENALTY = "penalty", _("penalty charged")
    RECOVERY_CREDIT = "recovery_credit", _("device recovery value credited")
    CORRECTION = "correction", _("correction")


class JournalQuerySet(models.QuerySet["Journal"]):
    def update(self, **kwargs: Any) -> int:
        raise TypeError("journals are append-only; post a reversing journal instead")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise TypeError("journals are append-only; post a reversing journal instead")


class Journal(models.Model):
    kind = models.CharField(_("kind"), max_length=20, choices=JournalKind.choices)
    # What makes a posting happen once: "settlement:2026-11-21:<mid>", "deposit_refund:<id>"...
    reference = models.CharField(_("reference"), max_length=120)  # unique: journal_once_per_reference
    # No index of its own: a merchant's journals are found by journal_merchant_date_idx, the staff's
    # list walks the ids; every posting would pay for one (settlement posts 10,000 at a time).
    business_date = models.DateField(_("business date"))
    occurred_at = models.DateTimeField(_("posted at"))
    merchant = models.ForeignKey(
        "parties.Merchant",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="journals",
        db_index=False,  # journal_merchant_date_idx starts with it
    )
    memo = models.CharField(_("memo"), max_length=255, blank=True)
    entry_count = models.PositiveSmallIntegerField(editable=False)
    # At most one correction per journal: journal_reversed_once, a partial unique index (only the
    # few corrections are in it, not a NULL for every other journal).
    reverses = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="reversed_by", db_index=False
    )

    objects = JournalQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        verbose_name = _("journal")
        verbose_name_plural = _("journals")
        indexes = [models.Index(fields=["merchant", "business_date"], name="journal_merchant_date_idx")]
        constraints = [
            models.CheckConstraint(condition=models.Q(entry_count__gte=2), name="journal_two_entries"),
            # A constraint, not unique=True: on PostgreSQL that would add a second, LIKE-pattern index
            # that nothing uses and every posting pays for.
            models.UniqueConstraint(fields=["reference"], name="journal_once_per_reference"),
            models.UniqueConstraint(
                fields=["reverses"], condition=models.Q(reverses__isnull=False), name="journal_reversed_once"
            ),
        ]

    def __str__(self) -> str:
        return self.reference


class EntryQuerySet(models.QuerySet["Entry"]):
    def update(self, **kwargs: Any) -> int:
        raise TypeError("ledger entries are append-only")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise TypeError("ledger entries are append-only")


class Entry(models.Model):
    journal = models.ForeignKey(Journal, on_delete=models.PROTECT, related_name="entries")
    account = models.ForeignKey(
        Account,
        on_delete=models.PROTECT,
        related_name="entries",
        db_index=False,  # entry_account_journal_idx starts with it
    )
    amount_fen = models.BigIntegerField(_("amount (fen; debit +, credit −)"))

    objects = EntryQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        indexes = [models.Index(fields=["account", "journal"], name="entry_account_journal_idx")]
        constraints = [models.CheckConstraint(condition=~models.Q(amount_fen=0), name="entry_not_zero")]

    def __str__(self) -> str:
        return f"{self.account_id} {self.amount_fen:+d}"
