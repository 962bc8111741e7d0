"""Plan change requests (换费率方案申请): a merchant (or its agent) asks to move to another of our rate
plans from a date; the provider's admin approves it (the plan is then assigned from that date, through
``plan_assign``) or rejects it with a reason; the requester may withdraw it while it waits.

The status is written only by ``billing/services/plan_changes.py`` (the table: ``billing/
plan_change_states.py``); at most one request of a merchant waits at a time (a database constraint).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from posfleet.billing.plan_change_states import PlanChangeStatus


class PlanChangeRequest(models.Model):
    merchant = models.ForeignKey(
        "parties.Merchant", on_delete=models.PROTECT, related_name="plan_change_requests"
    )
    # The plan the merchant was on when it asked (None: no plan assigned).
    from_plan = models.ForeignKey(
        "billing.RatePlan", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    to_plan = models.ForeignKey("billing.RatePlan", on_delete=models.PROTECT, related_name="change_requests")
    effective_from = models.DateField(_("effective from (requested)"))
    status = models.CharField(
        _("status"), max_length=16, choices=PlanChangeStatus.choices, default=PlanChangeStatus.REQUESTED
    )
    note = models.CharField(_("note"), max_length=255, blank=True)  # the requester's
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField(_("requested"))
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    reason = models.CharField(_("reason"), max_length=255, blank=True)  # why rejected or withdrawn
    # The assignment an approval made (its ``effective_from`` is the day the plan applies from).
    assignment = models.OneToOneField(
        "billing.PlanAssignment", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-requested_at", "-id"]
        verbose_name = _("plan change request")
        verbose_name_plural = _("plan change requests")
        constraints = [
            models.UniqueConstraint(
                fields=["merchant"],
                condition=models.Q(status="requested"),
                name="plan_change_one_waiting_per_merchant",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(status="approved", assignment__isnull=False, decided_at__isnull=False)
                    | (~models.Q(status="approved") & models.Q(assignment__isnull=True))
                ),
                name="plan_change_approved_has_assignment",
            ),
        ]
        indexes = [models.Index(fields=["status", "requested_at"], name="plan_change_status_idx")]

    def __str__(self) -> str:
        return f"plan change {self.pk} ({self.merchant_id} → {self.to_plan_id})"
