"""The money pages' forms: transaction filters, rate plans, plan assignment, contract offer and
acceptance, deposit release. Amounts are typed in yuan, rates in percent; the services check again."""

from __future__ import annotations

from datetime import date
from typing import Any, cast

from django import forms
from django.http import QueryDict
from django.utils.translation import gettext_lazy as _

from posfleet.billing.models import (
    PaymentMethod,
    PenaltyRule,
    RatePlan,
    TransactionKind,
    TransactionStatus,
)
from posfleet.billing.selectors import DEFAULT_TRANSACTION_SORT, TRANSACTION_SORTS, TransactionSearch
from posfleet.billing.services.contracts import DAMAGE_GRADES, Terms
from posfleet.console.forms import inverted_range
from posfleet.console.views.money.fields import MoneyField
from posfleet.iam.forms import BootstrapMixin, WithTotpMixin
from posfleet.iam.models import Role, User
from posfleet.platform.clock import today

PAGE_SIZE = 50
DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def any_choice(label: Any) -> list[tuple[str, Any]]:
    return [("", label)]


class TransactionFilterForm(BootstrapMixin, forms.Form):
    """Every field is optional; an invalid value is shown as an error and left out of the search. A
    date range that ends before it starts is refused: ``range_error`` says so, nothing is found."""

    merchant = forms.CharField(
        label=_("Merchant MID"),
        required=False,
        max_length=15,
        widget=forms.TextInput(attrs={"placeholder": _("MID"), "autocomplete": "off", "spellcheck": "false"}),
    )
    terminal = forms.CharField(
        label=_("Terminal"),
        required=False,
        max_length=32,
        widget=forms.TextInput(
            attrs={"placeholder": _("SN or TID"), "autocomplete": "off", "spellcheck": "false"}
        ),
    )
    date_from = forms.DateField(label=_("From"), required=False, widget=DATE)
    date_to = forms.DateField(label=_("To"), required=False, widget=DATE)
    method = forms.ChoiceField(label=_("Payment method"), required=False)
    kind = forms.ChoiceField(label=_("Kind"), required=False)
    status = forms.ChoiceField(label=_("Status"), required=False)
    amount_min = MoneyField(label=_("Amount from"), required=False)
    amount_max = MoneyField(label=_("Amount to"), required=False)
    batch = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    sort = forms.ChoiceField(
        required=False, choices=[(k, k) for k in TRANSACTION_SORTS], widget=forms.HiddenInput
    )
    page = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    NAMES = (
        "merchant",
        "terminal",
        "date_from",
        "date_to",
        "method",
        "kind",
        "status",
        "amount_min",
        "amount_max",
    )

    def __init__(self, data: QueryDict, *, user: User) -> None:
        super().__init__(data)
        cast(forms.ChoiceField, self.fields["method"]).choices = any_choice(_("All methods")) + list(
            PaymentMethod.choices
        )
        cast(forms.ChoiceField, self.fields["kind"]).choices = any_choice(_("All kinds")) + list(
            TransactionKind.choices
        )
        cast(forms.ChoiceField, self.fields["status"]).choices = any_choice(_("All statuses")) + list(
            TransactionStatus.choices
        )
        if user.role == Role.MERCHANT:
            del self.fields["merchant"]  # a merchant sees its own transactions only
        self.range_error = ""
        self.is_valid()

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        self.range_error = inverted_range(data.get("date_from"), data.get("date_to"), field="date_from")
        return data

    def value(self, name: str) -> Any:
        """The cleaned value, or None when missing or invalid (the error is shown on the field)."""
        return self.cleaned_data.get(name) if name in self.fields else None

    def search(self) -> TransactionSearch:
        def one(name: str) -> tuple[str, ...]:
            return (self.value(name),) if self.value(name) else ()

        return TransactionSearch(
            merchant=(self.value("merchant") or "").strip().upper(),
            terminal_or_tid=(self.value("terminal") or "").strip().upper(),
            date_from=self.value("date_from"),
            date_to=self.value("date_to"),
            methods=one("method"),
            kinds=one("kind"),
            statuses=one("status"),
            amount_min_fen=self.value("amount_min"),
            amount_max_fen=self.value("amount_max"),
            batch_id=self.value("batch"),
        )

    def sort_key(self) -> str:
        return self.value("sort") or DEFAULT_TRANSACTION_SORT

    def page_number(self) -> int:
        return self.value("page") or 1

    def active_count(self) -> int:
        return sum(1 for name in (*self.NAMES, "batch") if self.value(name) not in (None, ""))

    def canonical(self) -> QueryDict:
        """The valid, non-empty parameters, as typed (amounts stay "12.30")."""
        query = QueryDict(mutable=True)
        for name in (*self.NAMES, "batch", "sort", "page"):
            value = self.value(name)
            if (
                value in (None, "")
                or (name == "sort" and value == DEFAULT_TRANSACTION_SORT)
                or (name == "page" and value == 1)
            ):
                continue
            if name in {"amount_min", "amount_max"}:
                query[name] = str(self.data.get(name, "")).strip()
            elif isinstance(value, date):
                query[name] = value.isoformat()
            else:
                query[name] = str(value)
        return query


def plan_choices(*, competitors: bool) -> list[tuple[str, str]]:
    plans = RatePlan.objects.filter(versions__isnull=False).distinct().order_by("is_competitor", "code")
    if not competitors:
        plans = plans.filter(is_competitor=False)
    return [(p.code, f"{p.name} ({p.code})") for p in plans]


TERM_CHOICES = [(m, m) for m in (12, 24, 36, 48, 60)]


class ContractOfferForm(BootstrapMixin, forms.Form):
    terminal = forms.CharField(
        label=_("Terminal (SN)"),
        max_length=32,
        widget=forms.TextInput(attrs={"autocomplete": "off", "class": "font-monospace"}),
    )
    plan = forms.ChoiceField(label=_("Rate plan"))
    starts_on = forms.DateField(label=_("Starts on"), widget=DATE)
    term_months = forms.TypedChoiceField(
        label=_("Term (months)"), choices=TERM_CHOICES, coerce=int, initial=12
    )
    annual_fee = MoneyField(label=_("Annual service/SIM fee"), initial=0)
    deposit = MoneyField(label=_("Deposit"), initial=0)
    min_term_months = forms.IntegerField(
        label=_("Minimum term (months)"), min_value=0, max_value=60, initial=0
    )
    penalty_rule = forms.ChoiceField(label=_("Early-termination penalty"), choices=PenaltyRule.choices)
    penalty_fixed = MoneyField(label=_("Fixed penalty"), required=False)
    penalty_monthly = MoneyField(label=_("Monthly fee for the penalty"), required=False)
    penalty_cap = MoneyField(label=_("Penalty cap"), required=False, help_text=_("Optional."))
    recovery_fee = MoneyField(label=_("Device recovery fee"), initial=0)
    recovery_value = MoneyField(
        label=_("Device recovery value"),
        initial=0,
        help_text=_("Credited to the merchant at closure if the device comes back as new (grade A)."),
    )
    damage_A = MoneyField(label=_("Damage, grade A"), required=False)
    damage_B = MoneyField(label=_("Damage, grade B"), required=False)
    damage_C = MoneyField(label=_("Damage, grade C"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["plan"]).choices = any_choice(_("Choose a plan…")) + plan_choices(
            competitors=False
        )
        self.fields["starts_on"].initial = today()

    def clean_terminal(self) -> str:
        return self.cleaned_data["terminal"].strip().upper()

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        rule = data.get("penalty_rule")
        if rule == PenaltyRule.FIXED and not data.get("penalty_fixed"):
            self.add_error("penalty_fixed", _("Give the fixed penalty."))
        if rule == PenaltyRule.REMAINING_MONTHS and not data.get("penalty_monthly"):
            self.add_error("penalty_monthly", _("Give the monthly fee the penalty counts."))
        if rule != PenaltyRule.NONE and not data.get("min_term_months"):
            self.add_error("min_term_months", _("A penalty applies only before a minimum term."))
        if (data.get("min_term_months") or 0) > (data.get("term_months") or 0):
            self.add_error("min_term_months", _("The minimum term cannot exceed the term."))
        return data

    def terms(self) -> Terms:
        data = self.cleaned_data
        damage = {g: data[f"damage_{g}"] for g in DAMAGE_GRADES if data.get(f"damage_{g}") is not None}
        return Terms(
            starts_on=data["starts_on"],
            term_months=data["term_months"],
            annual_fee_fen=data.get("annual_fee") or 0,
            deposit_fen=data.get("deposit") or 0,
            min_term_months=data.get("min_term_months") or 0,
            penalty_rule=data["penalty_rule"],
            penalty_fixed_fen=data.get("penalty_fixed") or 0,
            penalty_monthly_fen=data.get("penalty_monthly") or 0,
            penalty_cap_fen=data.get("penalty_cap"),
            recovery_fee_fen=data.get("recovery_fee") or 0,
            recovery_value_fen=data.get("recovery_value") or 0,
            damage_prices=damage,
        )


class ContractAcceptForm(BootstrapMixin, forms.Form):
    confirm = forms.BooleanField(
        label=_(
            "I have read the terms above, including the fees, the deposit and the penalty, and accept them."
        ),
        error_messages={"required": _("Tick the box to confirm that you accept the terms.")},
    )


class ReleaseReason:
    CHOICES = [
        ("contract_ended", _("contract ended")),
        ("device_returned", _("device returned in good order")),
        ("device_damaged", _("device returned damaged")),
        ("device_not_returned", _("device not returned")),
        ("fees_outstanding", _("fees outstanding")),
        ("other", _("other")),
    ]


class DepositReleaseForm(WithTotpMixin, BootstrapMixin, forms.Form):
    """Two steps: the amounts (``refund``, ``reason``, ``note``) are read back for confirmation; the
    confirmation carries the refund it showed (``confirm_fen``) and the step-up code, and only a
    confirmation of the very amount the refund field reads releases the deposit."""

    refund = MoneyField(
        label=_("Refund to the merchant"),
        help_text=_("The rest of the deposit is forfeited. Enter 0 to forfeit it all."),
    )
    reason = forms.ChoiceField(
        label=_("Reason"), choices=any_choice(_("Choose a reason…")) + ReleaseReason.CHOICES
    )
    note = forms.CharField(
        label=_("Note"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )
    confirm_fen = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)

    def __init__(self, *args: Any, amount_fen: int, confirming: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.amount_fen = amount_fen
        self.confirming = confirming
        self.fields["refund"].initial = amount_fen

    def clean_refund(self) -> int:
        refund = self.cleaned_data["refund"]
        if refund is None:
            raise forms.ValidationError(_("Enter the amount to refund (0 to forfeit it all)."))
        if refund > self.amount_fen:
            raise forms.ValidationError(_("The refund cannot exceed the deposit."))
        return int(refund)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("reason") == "other" and not (data.get("note") or "").strip():
            self.add_error("note", _("Say in the note what the other reason is."))
        refund = data.get("refund")
        if self.confirming and refund is not None and data.get("confirm_fen") != refund:
            raise forms.ValidationError(
                _("The amount to refund changed: check it and confirm again."), code="changed"
            )
        return data

    @property
    def amounts_read(self) -> bool:
        """The amounts are valid (whatever the step-up code or the confirmation say): they can be shown
        for confirmation."""
        return not any(self.has_error(name) for name in ("refund", "reason", "note"))
