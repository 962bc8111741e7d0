"""Deposits (押金 / 保证金): collected, held, then refunded in whole or part, or forfeited — once."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Deposit(models.Model):
    class Status(models.TextChoices):
        HELD = "held", _("held")
        REFUNDED = "refunded", _("refunded")  # in whole or in part; the rest forfeited
        FORFEITED = "forfeited", _("forfeited")  # nothing came back

    contract = models.OneToOneField(
        "billing.ServiceContract", on_delete=models.PROTECT, related_name="deposit"
    )
    merchant = models.ForeignKey("parties.Merchant", on_delete=models.PROTECT, related_name="deposits")
    amount_fen = models.BigIntegerField(_("amount (fen)"))
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.HELD)
    collected_at = models.DateTimeField(_("collected"))
    collect_journal = models.OneToOneField(
        "billing.Journal", on_delete=models.PROTECT, related_name="deposit_collected"
    )
    refunded_fen = models.BigIntegerField(_("refunded (fen)"), default=0)
    forfeited_fen = models.BigIntegerField(_("forfeited (fen)"), default=0)
    released_at = models.DateTimeField(_("released"), null=True, blank=True)
    # Set in the same transaction as the status leaves `held`: a second release cannot have a journal.
    release_journal = models.OneToOneField(
        "billing.Journal", on_delete=models.PROTECT, null=True, blank=True, related_name="deposit_released"
    )

    class Meta:
        ordering = ["-collected_at"]
        verbose_name = _("deposit")
        verbose_name_plural = _("deposits")
        constraints = [
            models.CheckConstraint(condition=models.Q(amount_fen__gt=0), name="deposit_positive"),
            models.CheckConstraint(
                condition=models.Q(refunded_fen__gte=0, forfeited_fen__gte=0),
                name="deposit_parts_not_negative",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    status="held", refunded_fen=0, forfeited_fen=0, release_journal__isnull=True
                )
                | (
                    ~models.Q(status="held")
                    & models.Q(release_journal__isnull=False)
                    & models.Q(refunded_fen=models.F("amount_fen") - models.F("forfeited_fen"))
                ),
                name="deposit_release_consistent",
            ),
        ]

    def __str__(self) -> str:
        return f"deposit {self.pk} ({self.amount_fen} fen, {self.status})"
