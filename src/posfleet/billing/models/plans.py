"""Rate plans (费率方案): versioned and effective-dated; assigned to merchants (or terminals) from a date.

History is never rewritten: a change is a new version (or a new assignment) from a date, and a fee is
always computed with the version in force at the transaction's time.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class PaymentMethod(models.TextChoices):
    CREDIT = "credit", _("credit card")
    DEBIT = "debit", _("debit card")
    QR = "qr", _("QR / scan (WeChat Pay, Alipay, Huabei, JD Baitiao)")
    NFC = "nfc", _("contactless / NFC")
    FOREIGN = "foreign", _("foreign card")


class SettlementCycle(models.TextChoices):
    T1 = "t1", _("T+1 (next day)")
    D0 = "d0", _("D0 (same day)")


class RatePlan(models.Model):
    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=120)
    # A competitor's published plan, entered by the operator for the "should I switch?" comparison.
    is_competitor = models.BooleanField(_("competitor plan"), default=False)
    provider_name = models.CharField(_("offered by"), max_length=120, blank=True)
    # What the plan asks beside its rates, per terminal, for the comparison's total (ADR 0027): a
    # competitor's annual service/SIM fee and the deposit it takes when a merchant moves to it. Moving
    # between our own plans keeps the merchant's service contracts, so ours are priced by those.
    annual_fee_fen = models.BigIntegerField(_("annual service/SIM fee per terminal (fen)"), default=0)
    deposit_fen = models.BigIntegerField(_("deposit per terminal (fen)"), default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["is_competitor", "code"]
        verbose_name = _("rate plan")
        verbose_name_plural = _("rate plans")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(annual_fee_fen__gte=0, deposit_fen__gte=0),
                name="rate_plan_amounts_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class RatePlanVersion(models.Model):
    plan = models.ForeignKey(RatePlan, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField(_("version"))
    effective_from = models.DateField(_("effective from"))
    settlement_cycle = models.CharField(
        _("settlement cycle"), max_length=4, choices=SettlementCycle.choices, default=SettlementCycle.T1
    )
    # Extra rate for same-day (D0) settlement, when the merchant opts in.
    d0_surcharge_rate = models.DecimalField(_("D0 surcharge"), max_digits=8, decimal_places=6, default=0)
    note = models.CharField(_("note"), max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["plan_id", "-effective_from", "-number"]
        verbose_name = _("rate plan version")
        verbose_name_plural = _("rate plan versions")
        constraints = [
            models.UniqueConstraint(fields=["plan", "number"], name="plan_version_number"),
            models.UniqueConstraint(fields=["plan", "effective_from"], name="plan_version_effective_from"),
        ]

    def __str__(self) -> str:
        return f"{self.plan.code} v{self.number} ({self.effective_from})"


class RateRule(models.Model):
    """The merchant discount rate (MDR) of one payment method in one plan version."""

    version = models.ForeignKey(RatePlanVersion, on_delete=models.PROTECT, related_name="rules")
    method = models.CharField(_("payment method"), max_length=16, choices=PaymentMethod.choices)
    rate = models.DecimalField(_("rate"), max_digits=8, decimal_places=6)  # 0.006000 = 0.60 %
    cap_fen = models.BigIntegerField(_("cap per transaction (fen)"), null=True, blank=True)
    min_fen = models.BigIntegerField(_("minimum per transaction (fen)"), null=True, blank=True)

    class Meta:
        ordering = ["version_id", "method"]
        verbose_name = _("rate rule")
        verbose_name_plural = _("rate rules")
        constraints = [
            models.UniqueConstraint(fields=["version", "method"], name="rate_rule_per_method"),
            models.CheckConstraint(condition=models.Q(rate__gte=0, rate__lt=1), name="rate_rule_rate_range"),
            models.CheckConstraint(
                condition=models.Q(cap_fen__isnull=True) | models.Q(cap_fen__gte=0),
                name="rate_rule_cap_positive",
            ),
            models.CheckConstraint(
                condition=models.Q(min_fen__isnull=True) | models.Q(min_fen__gte=0),
                name="rate_rule_min_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.rate}"


class PlanAssignment(models.Model):
    """Which plan a merchant (or one of its terminals, which then wins) is on, from a date."""

    merchant = models.ForeignKey(
        "parties.Merchant", on_delete=models.PROTECT, related_name="plan_assignments"
    )
    terminal = models.ForeignKey(
        "fleet.Terminal", on_delete=models.PROTECT, null=True, blank=True, related_name="plan_assignments"
    )
    plan = models.ForeignKey(RatePlan, on_delete=models.PROTECT, related_name="assignments")
    effective_from = models.DateField(_("effective from"))
    d0_settlement = models.BooleanField(_("same-day settlement (D0)"), default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["merchant_id", "-effective_from"]
        verbose_name = _("plan assignment")
        verbose_name_plural = _("plan assignments")
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "effective_from"],
                condition=models.Q(terminal__isnull=True),
                name="plan_assignment_merchant_day",
            ),
            models.UniqueConstraint(
                fields=["terminal", "effective_from"],
                condition=models.Q(terminal__isnull=False),
                name="plan_assignment_terminal_day",
            ),
        ]
        indexes = [models.Index(fields=["merchant", "effective_from"], name="plan_assign_merchant_idx")]

    def __str__(self) -> str:
        return f"{self.merchant_id} → {self.plan_id} from {self.effective_from}"
