"""Closure cases (注销工单): the case, its terminals, its steps with their evidence, and the data backups.

Only ``closure.services`` and ``closure.runner`` write these rows; the console and the API read them
through ``closure.selectors``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from posfleet.closure.complaint_states import ComplaintCategory, ComplaintStatus, Escalation
from posfleet.closure.states import CaseKind, CaseStatus, ClosureReason, Party, StepName, StepState


class ClosureCase(models.Model):
    number = models.CharField(_("case number"), max_length=20, unique=True)
    merchant = models.ForeignKey("parties.Merchant", on_delete=models.PROTECT, related_name="closure_cases")
    status = models.CharField(
        _("status"), max_length=16, choices=CaseStatus.choices, default=CaseStatus.REQUESTED
    )
    reason = models.CharField(_("reason"), max_length=24, choices=ClosureReason.choices)
    note = models.CharField(_("note"), max_length=500, blank=True)
    # An agent termination is reviewed by the merchant's agent until the provider takes it over (ADR 0023).
    kind = models.CharField(_("kind"), max_length=20, choices=CaseKind.choices, default=CaseKind.CLOSURE)
    # Who asked: a person (merchant, agent or provider staff) — maker-checker compares the reviewer to it.
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    requested_by_label = models.CharField(max_length=120, blank=True)
    requested_at = models.DateTimeField(_("requested"))
    review_due_at = models.DateTimeField(_("review due"))
    review_reminded_at = models.DateTimeField(null=True, blank=True)
    review_escalated_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reviewed_at = models.DateTimeField(_("reviewed"), null=True, blank=True)
    review_note = models.CharField(_("review note"), max_length=500, blank=True)
    # Set once when the provider's staff take an agent termination over from an agent that did not act
    # (through a complaint, closure.services.complaints.complaint_take_over): they decide from then on.
    taken_over_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    taken_over_at = models.DateTimeField(_("taken over"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)  # withdrawn, rejected or completed
    # The quote the requester confirmed (closure.quote.Quote.as_json) and its digest: a request whose
    # digest is not the current quote's is refused as stale.
    quote = models.JSONField(_("quote"), default=dict)
    quote_digest = models.CharField(max_length=64)
    # Device return (step "return"): where to, by when, the reference to write on the parcel.
    return_address = models.CharField(_("return address"), max_length=300, blank=True)
    return_due_on = models.DateField(_("return deadline"), null=True, blank=True)
    return_reference = models.CharField(_("shipping reference"), max_length=32, blank=True)
    tracking_no = models.CharField(_("tracking number"), max_length=64, blank=True)
    # The certificate (注销证明): its public verification code, set once when it is issued.
    certificate_code = models.CharField(max_length=16, null=True, blank=True, unique=True)
    certificate_issued_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        verbose_name = _("closure case")
        verbose_name_plural = _("closure cases")
        indexes = [models.Index(fields=["status", "review_due_at"], name="closure_case_status_due_idx")]

    def __str__(self) -> str:
        return self.number


class CaseTerminal(models.Model):
    """One terminal of a case, with what happened to its device."""

    class Grade(models.TextChoices):
        A = "A", _("A — as new")
        B = "B", _("B — signs of wear")
        C = "C", _("C — damaged")

    case = models.ForeignKey(ClosureCase, on_delete=models.PROTECT, related_name="terminals")
    terminal = models.ForeignKey("fleet.Terminal", on_delete=models.PROTECT, related_name="closure_entries")
    contract = models.ForeignKey(
        "billing.ServiceContract", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # True while the case is open: a terminal is in at most one open case (the database says so).
    open = models.BooleanField(default=True)
    status_before = models.CharField(max_length=16)  # the terminal's status when the case was asked for
    received_at = models.DateTimeField(_("received"), null=True, blank=True)
    grade = models.CharField(_("grade"), max_length=1, choices=Grade.choices, blank=True)
    human_damage = models.BooleanField(_("damage caused by a person"), default=False)
    inspection_note = models.CharField(_("inspection notes"), max_length=500, blank=True)
    inspected_at = models.DateTimeField(_("inspected"), null=True, blank=True)
    damage_fen = models.BigIntegerField(_("damage charge (fen)"), default=0)
    recovery_fee_fen = models.BigIntegerField(_("recovery fee charged (fen)"), default=0)
    # The contract's recovery value, recorded at inspection for a device graded A (as new); credited to
    # the merchant by the refund step.
    recovery_value_fen = models.BigIntegerField(_("recovery value to credit (fen)"), default=0)
    disposal = models.CharField(_("disposal"), max_length=16, blank=True)  # refurbished | scrapped

    class Meta:
        ordering = ["case", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["terminal"], condition=models.Q(open=True), name="closure_terminal_one_open_case"
            ),
            models.UniqueConstraint(fields=["case", "terminal"], name="closure_terminal_once_per_case"),
            models.CheckConstraint(
                condition=models.Q(damage_fen__gte=0, recovery_fee_fen__gte=0, recovery_value_fen__gte=0),
                name="closure_terminal_charges_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.case_id}:{self.terminal_id}"


class CaseStep(models.Model):
    """One step of a running case (closure/states.py ``STEPS``): its state, whom it waits for, how many
    times it was tried, and what came back (``evidence``)."""

    case = models.ForeignKey(ClosureCase, on_delete=models.PROTECT, related_name="steps")
    name = models.CharField(max_length=16, choices=[(s.value, s.value) for s in StepName])
    state = models.CharField(max_length=12, choices=StepState.choices, default=StepState.PENDING)
    waiting_for = models.CharField(max_length=12, choices=Party.choices, blank=True)
    # "<case number>:<step>": what the step's effects are keyed by (journals, commands, channel calls).
    key = models.CharField(max_length=40, unique=True)
    attempts = models.PositiveIntegerField(default=0)
    # A running step's lease: past it, the worker that claimed the step is presumed dead and the step
    # is run again (its effects are idempotent, so nothing happens twice).
    lease_until = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    waiting_since = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    message = models.CharField(max_length=500, blank=True)  # the last problem, in plain words
    evidence = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["case", "id"]
        constraints = [models.UniqueConstraint(fields=["case", "name"], name="closure_step_once_per_case")]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="closure_step_state_idx")]

    def __str__(self) -> str:
        return self.key


class DataBackup(models.Model):
    """A merchant's data backup bundle (zip of CSV + Parquet, manifest of SHA-256 sums, signed)."""

    merchant = models.ForeignKey("parties.Merchant", on_delete=models.PROTECT, related_name="data_backups")
    case = models.ForeignKey(
        ClosureCase, on_delete=models.PROTECT, null=True, blank=True, related_name="backups"
    )
    path = models.CharField(max_length=300)  # relative to settings.POSFLEET["BACKUP_DIR"]
    size_bytes = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64)
    manifest_sha256 = models.CharField(max_length=64)
    signature = models.TextField()  # base64 Ed25519 signature of the manifest
    key_id = models.CharField(max_length=32)  # which signing key (its public half is published)
    created_at = models.DateTimeField()
    created_by_label = models.CharField(max_length=120, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.path


class Complaint(models.Model):
    """A merchant's grievance (投诉) — about its agent, a closure case, a deposit, a device, anything —
    addressed to its agent or to the provider, with the handler's clock (``due_at``) and the escalation
    to the provider (closure/complaint_states.py). Only ``closure.services.complaints`` writes it."""

    number = models.CharField(_("complaint number"), max_length=20, unique=True)
    merchant = models.ForeignKey("parties.Merchant", on_delete=models.PROTECT, related_name="complaints")
    status = models.CharField(
        _("status"), max_length=16, choices=ComplaintStatus.choices, default=ComplaintStatus.OPEN
    )
    category = models.CharField(_("about"), max_length=16, choices=ComplaintCategory.choices)
    subject = models.CharField(_("subject"), max_length=200)
    text = models.TextField(_("what happened"), max_length=4000)
    case = models.ForeignKey(
        ClosureCase,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="complaints",
        verbose_name=_("closure case"),
    )
    # The agent organisation it is addressed to, or the provider; it stays when escalated (the agent
    # still sees what it was asked).
    addressed_to = models.ForeignKey(
        "iam.Organisation", on_delete=models.PROTECT, related_name="+", verbose_name=_("addressed to")
    )
    raised_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    raised_by_label = models.CharField(max_length=120, blank=True)
    raised_at = models.DateTimeField(_("raised"))
    # The handler's clock: acknowledge by (open, escalated), answer by (acknowledged).
    due_at = models.DateTimeField(_("due"))
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    acknowledged_at = models.DateTimeField(_("acknowledged"), null=True, blank=True)
    escalated_at = models.DateTimeField(_("escalated"), null=True, blank=True)
    escalation = models.CharField(
        _("escalated because"), max_length=20, blank=True, choices=[(e.value, e.value) for e in Escalation]
    )
    resolution = models.TextField(_("answer"), max_length=4000, blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    answered_at = models.DateTimeField(_("answered"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)
    reopened = models.PositiveSmallIntegerField(_("times reopened"), default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-raised_at", "-id"]
        verbose_name = _("complaint")
        verbose_name_plural = _("complaints")
        indexes = [models.Index(fields=["status", "due_at"], name="closure_complaint_due_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(escalated_at__isnull=True, escalation="")
                | models.Q(escalated_at__isnull=False) & ~models.Q(escalation=""),
                name="closure_complaint_escalation_named",
            ),
        ]

    def __str__(self) -> str:
        return self.number
