"""Settlement (结算): the daily T+1 run, and one batch (with one journal) per merchant and day."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _


class SettlementRun(models.Model):
    """One run for one business date. Its progress is stored, so a run that died resumes."""

    class Status(models.TextChoices):
        RUNNING = "running", _("running")
        DONE = "done", _("done")
        FAILED = "failed", _("failed")

    business_date = models.DateField(_("transactions of"), unique=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(_("started"))
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    merchants_total = models.PositiveIntegerField(default=0)
    merchants_done = models.PositiveIntegerField(default=0)
    last_merchant_id = models.BigIntegerField(default=0, help_text="Merchants are settled in id order.")
    attempts = models.PositiveIntegerField(default=1)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-business_date"]
        verbose_name = _("settlement run")
        verbose_name_plural = _("settlement runs")

    def __str__(self) -> str:
        return f"settlement {self.business_date} ({self.status})"


class SettlementBatch(models.Model):
    merchant = models.ForeignKey(
        "parties.Merchant",
        on_delete=models.PROTECT,
        related_name="settlements",
        db_index=False,  # settlement_once_per_day starts with the merchant
    )
    business_date = models.DateField(_("transactions of"))
    paid_on = models.DateField(_("paid on"))
    run = models.ForeignKey(SettlementRun, on_delete=models.PROTECT, related_name="batches")
    txn_count = models.PositiveIntegerField(_("transactions"), default=0)
    gross_fen = models.BigIntegerField(_("sales (fen)"), default=0)
    refunds_fen = models.BigIntegerField(_("refunds and reversals (fen)"), default=0)
    fees_fen = models.BigIntegerField(_("fees (fen)"), default=0)
    service_fees_fen = models.BigIntegerField(_("service fees deducted (fen)"), default=0)
    payout_fen = models.BigIntegerField(_("paid out (fen)"), default=0)
    journal = models.OneToOneField(
        "billing.Journal", on_delete=models.PROTECT, null=True, blank=True, related_name="settlement"
    )
    # It pays the merchant's day totals with settle_day in (covers_after, business_date]: the days
    # since the previous run (none: every day up to business_date).
    covers_after = models.DateField(_("pays the days after"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-business_date", "merchant_id"]
        verbose_name = _("settlement batch")
        verbose_name_plural = _("settlement batches")
        constraints = [
            models.UniqueConstraint(fields=["merchant", "business_date"], name="settlement_once_per_day"),
            models.CheckConstraint(
                condition=models.Q(
                    payout_fen=models.F("gross_fen")
                    - models.F("refunds_fen")
                    - models.F("fees_fen")
                    - models.F("service_fees_fen")
                ),
                name="settlement_payout_adds_up",
            ),
            models.CheckConstraint(
                condition=models.Q(payout_fen__gte=0), name="settlement_payout_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"settlement {self.merchant_id} {self.business_date}"

    def pays(self, prefix: str = "") -> models.Q:
        """The day totals this batch paid (``prefix``: the path to them, e.g. ``"daily_total__"``)."""
        q = models.Q(
            **{
                f"{prefix}merchant_id": self.merchant_id,
                f"{prefix}settle_day__lte": self.business_date,
            }
        )
        if self.covers_after is not None:
            q &= models.Q(**{f"{prefix}settle_day__gt": self.covers_after})
        return q


def batches_paying(merchant_id: Any, settle_day: Any) -> models.QuerySet[SettlementBatch]:
    """A merchant's batches on or after a settlement day, in date order: the first is the one that
    pays (or will pay) a day total of that merchant and day. Values or ``OuterRef``s."""
    return SettlementBatch.objects.filter(merchant_id=merchant_id, business_date__gte=settle_day).order_by(
        "business_date"
    )


class DailyTotal(models.Model):
    """A merchant's approved transactions of one date, summed as they are ingested, and the day whose
    run pays them (``settle_day``): what settlement pays. Ingest adds each accepted transaction to the
    total of its merchant, date and settlement day, and the transaction points at it.

    ``settle_day`` is the transaction's date, or the day after the latest settlement run when that
    date's run has begun already (a late arrival waits for the next run). So a run never meets a new
    total of its own days, and the batch of merchant M for day D pays exactly M's totals with
    ``settle_day`` in (``covers_after``, D], the days since the previous run: settlement writes one
    batch per merchant and never touches the totals (ADR 0009). A merchant whose net is not positive
    waits: its totals move on to the next day."""

    merchant = models.ForeignKey("parties.Merchant", on_delete=models.PROTECT, related_name="daily_totals")
    txn_date = models.DateField(_("date"))
    settle_day = models.DateField(_("settled by the run of"))
    txn_count = models.PositiveIntegerField(_("transactions"), default=0)
    gross_fen = models.BigIntegerField(_("sales (fen)"), default=0)
    refunds_fen = models.BigIntegerField(_("refunds and reversals (fen)"), default=0)
    fees_fen = models.BigIntegerField(_("fees (fen)"), default=0)  # sale fees less the fees refunds gave back

    class Meta:
        ordering = ["txn_date", "merchant_id"]
        verbose_name = _("daily total")
        verbose_name_plural = _("daily totals")
        constraints = [
            # In this order its index also finds a batch's totals: merchant, then the batch's days.
            models.UniqueConstraint(
                fields=["merchant", "settle_day", "txn_date"], name="daily_total_one_per_settle_day"
            ),
            models.CheckConstraint(
                condition=models.Q(settle_day__gte=models.F("txn_date")), name="daily_total_settled_after"
            ),
        ]
        # The run reads the totals of its days (settle_day in (previous run, D]), merchants in order.
        indexes = [models.Index(fields=["settle_day", "merchant"], name="daily_total_settle_idx")]

    def __str__(self) -> str:
        return f"daily total {self.merchant_id} {self.txn_date}"
