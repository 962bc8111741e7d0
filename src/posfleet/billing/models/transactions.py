"""Card and QR transactions (交易) as the acquirer reports them, with the fee computed at ingest."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import models
from django.utils.translation import gettext_lazy as _

from posfleet.billing.models.plans import PaymentMethod

if TYPE_CHECKING:
    from posfleet.billing.models.settlement import SettlementBatch


class TransactionKind(models.TextChoices):
    SALE = "sale", _("sale")
    REFUND = "refund", _("refund")  # money back to the cardholder, in part or in whole, later
    REVERSAL = "reversal", _("reversal")  # the sale cancelled (same day), fee included


class TransactionStatus(models.TextChoices):
    APPROVED = "approved", _("approved")
    DECLINED = "declined", _("declined")  # recorded, moves no money


class EntryMode(models.TextChoices):
    SWIPE = "swipe", _("swipe")
    INSERT = "insert", _("insert (chip)")
    TAP = "tap", _("tap")
    SCAN = "scan", _("scan")
    KEYED = "keyed", _("keyed")


class Transaction(models.Model):
    terminal = models.ForeignKey("fleet.Terminal", on_delete=models.PROTECT, related_name="transactions")
    merchant = models.ForeignKey("parties.Merchant", on_delete=models.PROTECT, related_name="transactions")
    # The acquirer's natural key: the same (TID, batch, trace, date) is the same transaction.
    tid = models.CharField(_("TID"), max_length=8)
    batch_no = models.CharField(_("batch no."), max_length=6)
    trace_no = models.CharField(_("trace no."), max_length=6)
    txn_date = models.DateField(_("date"))
    external_id = models.CharField(_("external id"), max_length=64, null=True, blank=True, unique=True)
    occurred_at = models.DateTimeField(_("time"))
    kind = models.CharField(
        _("kind"), max_length=10, choices=TransactionKind.choices, default=TransactionKind.SALE
    )
    status = models.CharField(_("status"), max_length=10, choices=TransactionStatus.choices)
    method = models.CharField(_("payment method"), max_length=16, choices=PaymentMethod.choices)
    entry_mode = models.CharField(_("entry mode"), max_length=8, choices=EntryMode.choices)
    amount_fen = models.BigIntegerField(_("amount (fen)"))
    fee_fen = models.BigIntegerField(_("fee (fen)"), default=0)
    card_masked = models.CharField(_("card"), max_length=19, blank=True)  # first 6 and last 4 only
    response_code = models.CharField(_("response code"), max_length=2, default="00")
    original = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="follow_ups"
    )
    plan_version = models.ForeignKey(
        "billing.RatePlanVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    capture_journal = models.ForeignKey(
        "billing.Journal", on_delete=models.PROTECT, null=True, blank=True, related_name="captured"
    )
    # The day total it was added to at ingest (approved ones only); settled when that total is.
    daily_total = models.ForeignKey(
        "billing.DailyTotal", on_delete=models.PROTECT, null=True, blank=True, related_name="transactions"
    )
    ingested_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        verbose_name = _("transaction")
        verbose_name_plural = _("transactions")
        constraints = [
            # In this order, a TID then its days lead the key: its index serves the transaction list's
            # TID filter and a large feed's TIDs × dates too, and no other index leads with any of its
            # columns. With a second one on (date, TID), a planner without statistics (a new table)
            # took that for an exact key and read the terminal's whole day (bench/README, 2026-12-08,
            # "the natural key").
            models.UniqueConstraint(
                fields=["tid", "txn_date", "batch_no", "trace_no"], name="transaction_natural_key"
            ),
            models.CheckConstraint(condition=models.Q(amount_fen__gt=0), name="transaction_amount_positive"),
            models.CheckConstraint(
                condition=models.Q(fee_fen__gte=0, fee_fen__lte=models.F("amount_fen")),
                name="transaction_fee_range",
            ),
            models.CheckConstraint(
                condition=models.Q(status="approved") | models.Q(fee_fen=0),
                name="transaction_declined_no_fee",
            ),
            models.CheckConstraint(
                condition=models.Q(kind="sale", original__isnull=True)
                | (~models.Q(kind="sale") & models.Q(original__isnull=False)),
                name="transaction_follow_up_has_original",
            ),
            models.CheckConstraint(  # approved money is always in a day total; a decline never is
                condition=models.Q(status="approved", daily_total__isnull=False)
                | models.Q(status="declined", daily_total__isnull=True),
                name="transaction_in_daily_total",
            ),
        ]
        indexes = [
            models.Index(fields=["merchant", "txn_date"], name="txn_merchant_date_idx"),
            models.Index(fields=["terminal", "occurred_at"], name="txn_terminal_time_idx"),
            # The transaction list's default order (newest first): its first page without sorting
            # every transaction in scope.
            models.Index(fields=["occurred_at", "id"], name="txn_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.tid}/{self.batch_no}/{self.trace_no} {self.txn_date}"

    @property
    def settlement_batch_id(self) -> int | None:
        """The batch that paid it, if any: annotated as ``settled_by`` by
        ``billing.selectors.with_settlement()`` where many are shown, else looked up."""
        if "settled_by" in self.__dict__:
            return self.__dict__["settled_by"]
        batch = self.settlement_batch
        return batch.pk if batch is not None else None

    @property
    def settlement_batch(self) -> SettlementBatch | None:
        """The first batch of its merchant on or after its day total's settlement day (a batch pays
        the days since the previous run; ADR 0009)."""
        if "_settlement_batch" in self.__dict__:
            return self.__dict__["_settlement_batch"]
        from posfleet.billing.models.settlement import SettlementBatch, batches_paying

        batch = None
        if "settled_by" in self.__dict__:
            if self.__dict__["settled_by"] is not None:
                batch = SettlementBatch.objects.filter(pk=self.__dict__["settled_by"]).first()
        elif (total := self.daily_total) is not None:
            batch = batches_paying(total.merchant_id, total.settle_day).first()
        self.__dict__["_settlement_batch"] = batch
        return batch


class SalesMonth(models.Model):
    """Sales (not refunds or reversals) of one calendar month, one payment method and one terminal
    model, approved or declined, of the merchants of one agent — the merchant's agent when the sale was
    made: how many and how much, added up as ingest writes them.
    The reports read these instead of the raw transactions (docs/adr/0036): rows per agent, month,
    method and model, however many merchants, terminals and sales there are.

    Ingest is the only writer of transactions and of these rows, in the same transaction and under the
    money lock (one ingest at a time), so they are exact at every commit; ``posfleet ledger verify``
    recounts them from the transactions."""

    agent = models.ForeignKey("parties.Agent", on_delete=models.PROTECT, related_name="+")
    month = models.DateField(_("month"))  # its first day
    method = models.CharField(_("payment method"), max_length=16, choices=PaymentMethod.choices)
    model = models.ForeignKey("fleet.TerminalModel", on_delete=models.PROTECT, related_name="+")
    status = models.CharField(_("status"), max_length=10, choices=TransactionStatus.choices)
    sales = models.BigIntegerField(_("sales"))
    amount_fen = models.BigIntegerField(_("amount (fen)"))

    class Meta:
        verbose_name = _("sales of a month")
        verbose_name_plural = _("sales by month")
        constraints = [
            # Its index also answers an agent's report: its agents, then the months asked for.
            models.UniqueConstraint(
                fields=["agent", "month", "method", "model", "status"], name="sales_month_one_row"
            ),
            models.CheckConstraint(
                condition=models.Q(sales__gt=0, amount_fen__gt=0), name="sales_month_positive"
            ),
        ]
        indexes = [models.Index(fields=["month"], name="sales_month_month_idx")]  # the staff's reports

    def __str__(self) -> str:
        return f"sales {self.agent_id} {self.month:%Y-%m} {self.method} {self.status}"
