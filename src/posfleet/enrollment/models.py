"""Service expiry milestones: each notice before expiry, the expiry itself and the suspension after the
grace period, recorded once per terminal and expiry date (the unique constraint is what makes a sweep
that runs twice send nothing twice)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from posfleet.enrollment.states import ApplicationStatus


class Milestone(models.TextChoices):
    T30 = "t30", _("30 days before expiry")
    T7 = "t7", _("7 days before expiry")
    T1 = "t1", _("the day before expiry")
    EXPIRED = "expired", _("expired (grace period)")
    SUSPENDED = "suspended", _("suspended after the grace period")


class ExpiryMilestone(models.Model):
    # No index of its own: the unique constraint's index starts with it.
    terminal = models.ForeignKey(
        "fleet.Terminal", on_delete=models.PROTECT, related_name="expiry_milestones", db_index=False
    )
    expires_on = models.DateField(_("service expiry"))
    # "t<days>" for a notice that many days before (settings: POSFLEET_EXPIRY["NOTICE_DAYS"]), or one of
    # the Milestone values after it.
    milestone = models.CharField(_("milestone"), max_length=16)
    reached_on = models.DateField(_("reached on"))
    created_at = models.DateTimeField(_("recorded"))

    class Meta:
        ordering = ["reached_on", "id"]
        verbose_name = _("expiry milestone")
        verbose_name_plural = _("expiry milestones")
        constraints = [
            models.UniqueConstraint(
                fields=["terminal", "expires_on", "milestone"], name="expiry_milestone_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.milestone} of {self.expires_on} (terminal {self.terminal_id})"


# -- applications (申请) ----------------------------------------------------------------------------


class ApplicationKind(models.TextChoices):
    NEW_MERCHANT = "new_merchant", _("new merchant")
    MORE_TERMINALS = "more_terminals", _("more terminals")
    REAPPLICATION = "reapplication", _("re-application after closure")


class Application(models.Model):
    """A request for terminals with the applicant's KYC (进件): from submission to active terminals.

    KYC values and documents are sealed with the applicant's data key (``platform.keyring``), which
    becomes the merchant's key when the application is approved. Every status change goes through
    ``enrollment.services`` (compare-and-set on ``status`` through ``enrollment/states.py``).
    """

    number = models.CharField(_("application number"), max_length=20, unique=True)
    kind = models.CharField(_("kind"), max_length=16, choices=ApplicationKind.choices)
    status = models.CharField(
        _("status"), max_length=16, choices=ApplicationStatus.choices, default=ApplicationStatus.SUBMITTED
    )
    agent = models.ForeignKey("parties.Agent", on_delete=models.PROTECT, related_name="applications")
    # The merchant: given for more terminals; created on approval for a new merchant or a re-application.
    merchant = models.ForeignKey(
        "parties.Merchant", on_delete=models.PROTECT, null=True, blank=True, related_name="applications"
    )
    previous_merchant = models.ForeignKey(
        "parties.Merchant", on_delete=models.PROTECT, null=True, blank=True, related_name="reapplications"
    )
    merchant_kind = models.CharField(_("merchant kind"), max_length=16)
    shop_name = models.CharField(_("shop name"), max_length=200)
    legal_name = models.CharField(_("legal name"), max_length=200)
    mcc = models.CharField(_("MCC"), max_length=4)
    contact_name = models.CharField(_("contact"), max_length=100)
    contact_phone = models.CharField(_("contact phone"), max_length=32)
    contact_email = models.EmailField(_("contact e-mail"), blank=True)
    store_name = models.CharField(_("store"), max_length=200)
    city = models.CharField(_("city"), max_length=64)
    address = models.CharField(_("delivery and installation address"), max_length=255)
    terminal_kind = models.CharField(_("terminal kind"), max_length=16)
    terminal_count = models.PositiveSmallIntegerField(_("terminals"))
    plan = models.ForeignKey("billing.RatePlan", on_delete=models.PROTECT, related_name="applications")
    offer = models.JSONField(_("contract offer"), default=dict)  # the Terms the applicant accepted
    data_key = models.ForeignKey("platform.DataKey", on_delete=models.PROTECT, related_name="applications")
    kyc_sealed = models.BinaryField(_("KYC (sealed)"), default=b"")
    kyc_checked_on = models.DateField(_("KYC checked"), null=True, blank=True)
    eligibility = models.JSONField(_("eligibility"), null=True, blank=True)
    submitted_by = models.ForeignKey(
        "iam.User", on_delete=models.PROTECT, related_name="submitted_applications"
    )
    submitted_at = models.DateTimeField(_("submitted"))
    review_due_at = models.DateTimeField(_("review due"))
    reminded_at = models.DateTimeField(null=True, blank=True)
    info_request = models.TextField(_("information asked for"), blank=True)
    reviewed_by = models.ForeignKey(
        "iam.User", on_delete=models.PROTECT, null=True, blank=True, related_name="reviewed_applications"
    )
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    decision_reason = models.TextField(_("reason"), blank=True)  # the reviewer's note
    # The preset reasons (enrollment/review.py ReviewReason codes) of the last rejection or request for
    # information; the applicant reads them in plain words, in their language.
    review_reasons = models.JSONField(_("reasons"), default=list, blank=True)
    carrier = models.CharField(_("carrier"), max_length=64, blank=True)
    tracking_no = models.CharField(_("tracking number"), max_length=64, blank=True)
    shipped_at = models.DateTimeField(_("shipped"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)
    completed_at = models.DateTimeField(_("completed"), null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-submitted_at", "-id"]
        verbose_name = _("application")
        verbose_name_plural = _("applications")
        indexes = [
            models.Index(fields=["status", "review_due_at"], name="application_queue_idx"),
            models.Index(fields=["agent", "status"], name="application_agent_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(terminal_count__gte=1, terminal_count__lte=50),
                name="application_count_range",
            ),
        ]

    def __str__(self) -> str:
        return self.number


class DocumentKind(models.TextChoices):
    ID_CARD = "id_card", _("ID card of the legal representative")
    BUSINESS_LICENCE = "business_licence", _("business licence")
    BANK_PROOF = "bank_proof", _("bank account proof")


class KycDocument(models.Model):
    """One uploaded KYC file, sealed (name and content) with the application's data key."""

    application = models.ForeignKey(Application, on_delete=models.PROTECT, related_name="documents")
    kind = models.CharField(_("document"), max_length=20, choices=DocumentKind.choices)
    content_type = models.CharField(max_length=64)
    size = models.PositiveIntegerField()
    name_sealed = models.BinaryField()
    content_sealed = models.BinaryField()
    uploaded_by = models.ForeignKey("iam.User", on_delete=models.PROTECT, related_name="+")
    uploaded_at = models.DateTimeField()
    replaced = models.BooleanField(default=False)

    class Meta:
        ordering = ["application_id", "kind", "-uploaded_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["application", "kind"],
                condition=models.Q(replaced=False),
                name="kyc_document_current",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} of {self.application_id}"


class ApplicationTerminal(models.Model):
    """A terminal allocated to an application, through install (bind + contract) and the test
    transaction that activates it."""

    application = models.ForeignKey(Application, on_delete=models.PROTECT, related_name="lines")
    terminal = models.ForeignKey("fleet.Terminal", on_delete=models.PROTECT, related_name="application_lines")
    contract = models.ForeignKey(
        "billing.ServiceContract", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    allocated_at = models.DateTimeField()
    installed_at = models.DateTimeField(null=True, blank=True)
    checks = models.JSONField(default=dict)  # {"swipe": true, "scan": true, "print": true}
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["application_id", "terminal_id"]
        constraints = [
            # A terminal is promised to one application at a time (until it is active).
            models.UniqueConstraint(
                fields=["terminal"],
                condition=models.Q(activated_at__isnull=True),
                name="application_terminal_open",
            ),
            models.UniqueConstraint(fields=["application", "terminal"], name="application_terminal_once"),
        ]

    def __str__(self) -> str:
        return f"{self.terminal_id} for {self.application_id}"
