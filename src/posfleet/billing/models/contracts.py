"""Service contracts (服务协议): the money terms under which a merchant holds one terminal."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class PenaltyRule(models.TextChoices):
    NONE = "none", _("no penalty")
    FIXED = "fixed", _("fixed amount")
    REMAINING_MONTHS = "remaining_months", _("remaining months × monthly fee")


class ServiceContract(models.Model):
    class Status(models.TextChoices):
        # A contract's own words (CONTEXT.md), never a terminal's: "active"/已激活 is what a terminal
        # becomes at its first sale; a contract is in force (生效中) until it ends.
        OFFERED = "offered", pgettext_lazy("contract status", "offered")  # not yet accepted
        ACTIVE = "active", pgettext_lazy("contract status", "in force")
        ENDED = "ended", pgettext_lazy("contract status", "ended")

    terminal = models.ForeignKey("fleet.Terminal", on_delete=models.PROTECT, related_name="contracts")
    merchant = models.ForeignKey("parties.Merchant", on_delete=models.PROTECT, related_name="contracts")
    plan = models.ForeignKey("billing.RatePlan", on_delete=models.PROTECT, related_name="contracts")
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.OFFERED)
    starts_on = models.DateField(_("starts on"))
    term_months = models.PositiveSmallIntegerField(_("term (months)"), default=12)
    annual_fee_fen = models.BigIntegerField(_("annual service/SIM fee (fen)"), default=0)
    deposit_fen = models.BigIntegerField(_("deposit (fen)"), default=0)
    min_term_months = models.PositiveSmallIntegerField(_("minimum term (months)"), default=0)
    penalty_rule = models.CharField(
        _("early-termination penalty"), max_length=20, choices=PenaltyRule.choices, default=PenaltyRule.NONE
    )
    penalty_fixed_fen = models.BigIntegerField(_("fixed penalty (fen)"), default=0)
    penalty_monthly_fen = models.BigIntegerField(_("monthly fee for the penalty (fen)"), default=0)
    penalty_cap_fen = models.BigIntegerField(_("penalty cap (fen)"), null=True, blank=True)
    recovery_fee_fen = models.BigIntegerField(_("device recovery fee (fen)"), default=0)
    # Credited to the merchant at closure when its device comes back as new (inspection grade A).
    recovery_value_fen = models.BigIntegerField(
        _("device recovery value, credited when returned as new (fen)"), default=0
    )
    # Damage charges by inspection grade: {"A": 0, "B": 5000, "C": 30000} (fen).
    damage_prices = models.JSONField(_("damage price list"), default=dict, blank=True)
    accepted_at = models.DateTimeField(_("accepted"), null=True, blank=True)
    ended_on = models.DateField(_("ended on"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_on", "id"]
        verbose_name = _("service contract")
        verbose_name_plural = _("service contracts")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(
                    annual_fee_fen__gte=0,
                    deposit_fen__gte=0,
                    recovery_fee_fen__gte=0,
                    recovery_value_fen__gte=0,
                    penalty_fixed_fen__gte=0,
                    penalty_monthly_fen__gte=0,
                ),
                name="contract_amounts_not_negative",
            ),
            models.UniqueConstraint(
                fields=["terminal"],
                condition=models.Q(status="active"),
                name="contract_one_active_per_terminal",
            ),
        ]

    def __str__(self) -> str:
        return f"contract {self.pk} ({self.terminal_id})"


class ServiceFeeDue(models.Model):
    """One annual service/SIM fee falling due. Charged to the merchant's fees receivable on its date,
    exactly once (``journal`` is set in the charging transaction), and deducted from settlements."""

    contract = models.ForeignKey(ServiceContract, on_delete=models.PROTECT, related_name="fees_due")
    period = models.PositiveSmallIntegerField(_("year of the contract"))
    due_on = models.DateField(_("due on"), db_index=True)
    amount_fen = models.BigIntegerField(_("amount (fen)"))
    journal = models.OneToOneField(
        "billing.Journal", on_delete=models.PROTECT, null=True, blank=True, related_name="fee_due"
    )
    # Set when the contract ended before the fee was charged (closure): it never falls due.
    lapsed_on = models.DateField(_("lapsed on"), null=True, blank=True)

    class Meta:
        ordering = ["due_on", "id"]
        verbose_name = _("service fee due")
        verbose_name_plural = _("service fees due")
        constraints = [
            models.UniqueConstraint(fields=["contract", "period"], name="fee_due_once_per_period"),
            models.CheckConstraint(condition=models.Q(amount_fen__gte=0), name="fee_due_not_negative"),
            models.CheckConstraint(
                condition=models.Q(journal__isnull=True) | models.Q(lapsed_on__isnull=True),
                name="fee_due_charged_or_lapsed",
            ),
        ]

    def __str__(self) -> str:
        return f"fee due {self.due_on} ({self.amount_fen} fen)"
