"""Agents (服务商), merchants (商户), their stores (门店) and their terminals' payment-channel bindings
(渠道绑定)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from posfleet.parties.channels import BindingStatus, Channel, Outcome
from posfleet.parties.states import MerchantStatus

MID_VALIDATOR = RegexValidator(r"^[0-9A-Z]{15}$", _("A merchant ID (MID) is 15 digits or capital letters."))
MCC_VALIDATOR = RegexValidator(r"^\d{4}$", _("An MCC is 4 digits."))


class Agent(models.Model):
    organisation = models.OneToOneField("iam.Organisation", on_delete=models.PROTECT, related_name="agent")
    code = models.CharField(_("agent code"), max_length=16, unique=True)
    name = models.CharField(_("name"), max_length=200)
    contact_name = models.CharField(_("contact"), max_length=100, blank=True)
    contact_phone = models.CharField(_("contact phone"), max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("agent")
        verbose_name_plural = _("agents")

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    @property
    def level(self) -> int:
        """1 for an agent directly under the provider, 2 for its sub-agents, and so on."""
        return self.organisation.path.count("/") - 2


class Merchant(models.Model):
    class Kind(models.TextChoices):
        INDIVIDUAL = "individual", _("individual")
        ENTERPRISE = "enterprise", _("enterprise")

    # The merchant's life is in parties/states.py; only parties/services.py changes ``status``.
    Status = MerchantStatus

    organisation = models.OneToOneField("iam.Organisation", on_delete=models.PROTECT, related_name="merchant")
    mid = models.CharField(_("merchant ID (MID)"), max_length=15, unique=True, validators=[MID_VALIDATOR])
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    name = models.CharField(_("shop name"), max_length=200)
    legal_name = models.CharField(_("legal name"), max_length=200)
    mcc = models.CharField(_("MCC"), max_length=4, validators=[MCC_VALIDATOR])
    agent = models.ForeignKey(
        Agent, on_delete=models.PROTECT, related_name="merchants", verbose_name=_("agent")
    )
    contact_name = models.CharField(_("contact"), max_length=100, blank=True)
    contact_phone = models.CharField(_("contact phone"), max_length=32, blank=True)
    contact_email = models.EmailField(_("contact e-mail"), blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.ACTIVE)
    # The key that seals this merchant's personal data (KYC); destroying it shreds that data.
    data_key = models.ForeignKey(
        "platform.DataKey", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["mid"]
        verbose_name = _("merchant")
        verbose_name_plural = _("merchants")

    def __str__(self) -> str:
        return f"{self.name} ({self.mid})"


class Store(models.Model):
    merchant = models.ForeignKey(
        Merchant, on_delete=models.PROTECT, related_name="stores", verbose_name=_("merchant")
    )
    code = models.CharField(_("store code"), max_length=16)
    name = models.CharField(_("name"), max_length=200)
    city = models.CharField(_("city"), max_length=64, blank=True)
    address = models.CharField(_("address"), max_length=255, blank=True)
    # Where the store is, WGS-84 degrees (both or neither): what a terminal's reported position is
    # measured against (fleet: relocation alerts, 移机). Six places of a degree are 0.11 m.
    latitude = models.DecimalField(
        _("latitude"),
        max_digits=9,
        decimal_places=6,
        null=True,
        blank=True,
        validators=[MinValueValidator(-90), MaxValueValidator(90)],
        help_text=_("WGS-84 degrees, north positive (e.g. 31.230416)."),
    )
    longitude = models.DecimalField(
        _("longitude"),
        max_digits=9,
        decimal_places=6,
        null=True,
        blank=True,
        validators=[MinValueValidator(-180), MaxValueValidator(180)],
        help_text=_("WGS-84 degrees, east positive (e.g. 121.473701)."),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["merchant_id", "code"]
        verbose_name = _("store")
        verbose_name_plural = _("stores")
        constraints = [
            models.UniqueConstraint(fields=["merchant", "code"], name="store_code_per_merchant"),
            models.CheckConstraint(
                condition=(
                    models.Q(latitude__isnull=True, longitude__isnull=True)
                    | models.Q(
                        latitude__isnull=False,
                        longitude__isnull=False,
                        latitude__gte=-90,
                        latitude__lte=90,
                        longitude__gte=-180,
                        longitude__lte=180,
                    )
                ),
                name="store_coordinates_both_in_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        if (self.latitude is None) != (self.longitude is None):
            raise ValidationError(_("Give both the latitude and the longitude of the store, or neither."))

    @property
    def has_coordinates(self) -> bool:
        return self.latitude is not None and self.longitude is not None


class ChannelBinding(models.Model):
    """A terminal's enrolment in one payment channel (UnionPay, Alipay, WeChat Pay, JD Pay…), under the
    channel's own id of the merchant or terminal. Closure unbinds every one through its channel's
    adapter; only ``parties.services`` (``channel_bind``, ``channel_unbind``) writes these rows.

    ``evidence`` is the channel's last answer as it gave it (code, message, its reference, when), so a
    person can see why a binding is still there; ``attempts`` counts the unbinds sent, each one counted
    before it goes out (a crash mid-call still leaves a trace)."""

    Status = BindingStatus

    merchant = models.ForeignKey(
        Merchant, on_delete=models.PROTECT, related_name="channel_bindings", verbose_name=_("merchant")
    )
    # The terminal lives in fleet, a context above this one: named by string, never imported.
    terminal = models.ForeignKey(
        "fleet.Terminal",
        on_delete=models.PROTECT,
        related_name="channel_bindings",
        verbose_name=_("terminal"),
    )
    channel = models.CharField(_("payment channel"), max_length=16, choices=Channel.choices)
    channel_merchant_id = models.CharField(_("merchant ID at the channel"), max_length=64)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.BOUND)
    bound_at = models.DateTimeField(_("bound"))
    unbound_at = models.DateTimeField(_("unbound"), null=True, blank=True)
    last_outcome = models.CharField(_("last answer"), max_length=16, choices=Outcome.choices, blank=True)
    evidence = models.JSONField(_("channel's answer"), default=dict, blank=True)
    attempts = models.PositiveIntegerField(_("unbind attempts"), default=0)

    class Meta:
        ordering = ["terminal_id", "channel", "pk"]
        verbose_name = _("channel binding")
        verbose_name_plural = _("channel bindings")
        constraints = [
            # A terminal is bound to a channel once at a time; unbound rows are history.
            models.UniqueConstraint(
                fields=["terminal", "channel"],
                condition=~models.Q(status=BindingStatus.UNBOUND),
                name="channel_binding_open_per_terminal",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} {self.channel_merchant_id}"
