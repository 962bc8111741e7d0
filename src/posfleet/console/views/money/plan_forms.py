"""The rate plan forms: a new plan (ours or a competitor's), a new version from a date, a plan for a
merchant from a date. Rates are typed in percent and caps/minimums in yuan, one row per payment method."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.utils.translation import gettext_lazy as _

from posfleet.billing.models import PaymentMethod, RatePlanVersion
from posfleet.billing.models.plans import SettlementCycle
from posfleet.billing.services.plans import RuleSpec
from posfleet.console.views.money.fields import MoneyField, PercentField
from posfleet.console.views.money.forms import DATE, any_choice, plan_choices
from posfleet.iam.forms import BootstrapMixin
from posfleet.platform.clock import today


class MethodRatesMixin:
    """One rate, cap and minimum per payment method (``rate_credit``, ``cap_credit``, ``min_credit``…)."""

    fields: dict[str, forms.Field]
    cleaned_data: dict[str, Any]

    def add_method_fields(self, version: RatePlanVersion | None = None) -> None:
        rules = {r.method: r for r in version.rules.all()} if version is not None else {}
        for method, label in PaymentMethod.choices:
            rule = rules.get(method)
            self.fields[f"rate_{method}"] = PercentField(
                label=label, required=False, initial=rule.rate if rule else None
            )
            self.fields[f"cap_{method}"] = MoneyField(
                label=_("Cap"), required=False, initial=rule.cap_fen if rule else None
            )
            self.fields[f"min_{method}"] = MoneyField(
                label=_("Minimum"), required=False, initial=rule.min_fen if rule else None
            )
            for kind in ("rate", "cap", "min"):
                widget = self.fields[f"{kind}_{method}"].widget
                widget.attrs["class"] = "form-control text-end tabular"

    def method_rows(self) -> list[tuple[str, Any, Any, Any, Any]]:
        """(method, label, rate field, cap field, minimum field) for the template's grid."""
        form = cast(forms.Form, self)
        return [
            (method, label, form[f"rate_{method}"], form[f"cap_{method}"], form[f"min_{method}"])
            for method, label in PaymentMethod.choices
        ]

    def clean_rules(self) -> None:
        form = cast(forms.Form, self)
        any_rate = False
        for method, _label in PaymentMethod.choices:
            rate = self.cleaned_data.get(f"rate_{method}")
            cap, minimum = self.cleaned_data.get(f"cap_{method}"), self.cleaned_data.get(f"min_{method}")
            if rate is None:
                if cap is not None or minimum is not None:
                    form.add_error(f"rate_{method}", _("Give the rate too, or clear the cap and minimum."))
                continue
            any_rate = True
            if cap is not None and minimum is not None and minimum > cap:
                form.add_error(f"min_{method}", _("The minimum cannot be above the cap."))
        if not any_rate and not form.errors:
            form.add_error(None, _("Give a rate for at least one payment method."))

    def rules(self) -> dict[str, RuleSpec]:
        return {
            method: RuleSpec(
                rate=self.cleaned_data[f"rate_{method}"],
                cap_fen=self.cleaned_data.get(f"cap_{method}"),
                min_fen=self.cleaned_data.get(f"min_{method}"),
            )
            for method in PaymentMethod.values
            if self.cleaned_data.get(f"rate_{method}") is not None
        }


class VersionFieldsMixin(forms.Form):
    effective_from = forms.DateField(label=_("Effective from"), widget=DATE)
    settlement_cycle = forms.ChoiceField(
        label=_("Settlement cycle"), choices=SettlementCycle.choices, initial=SettlementCycle.T1
    )
    d0_surcharge = PercentField(
        label=_("D0 surcharge"),
        required=False,
        help_text=_("Extra rate for same-day settlement, when the merchant opts in."),
        widget=forms.TextInput(attrs={"placeholder": "0.05%"}),
    )


class RatePlanForm(MethodRatesMixin, BootstrapMixin, VersionFieldsMixin):
    code = forms.SlugField(
        label=_("Code"),
        max_length=40,
        help_text=_("Letters, digits and dashes, e.g. “lakala-2026”."),
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "spellcheck": "false", "class": "font-monospace"}
        ),
    )
    name = forms.CharField(label=_("Name"), max_length=120)
    is_competitor = forms.BooleanField(
        label=_("A competitor's plan (for the cost comparison only)"), required=False
    )
    provider_name = forms.CharField(label=_("Offered by"), max_length=120, required=False)
    annual_fee = MoneyField(
        label=_("Service/SIM fee per terminal, a year"),
        required=False,
        help_text=_("What the plan asks beside its rates; the comparison adds it (competitors' plans)."),
    )
    deposit = MoneyField(
        label=_("Deposit per terminal"),
        required=False,
        help_text=_("Paid when a merchant moves to the plan; the comparison adds it (competitors' plans)."),
    )

    field_order = [
        "code",
        "name",
        "is_competitor",
        "provider_name",
        "annual_fee",
        "deposit",
        "effective_from",
        "settlement_cycle",
    ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_method_fields()

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("is_competitor") and not (data.get("provider_name") or "").strip():
            self.add_error("provider_name", _("Say whose plan it is."))
        self.clean_rules()
        return data


class PlanVersionForm(MethodRatesMixin, BootstrapMixin, VersionFieldsMixin):
    note = forms.CharField(label=_("Note"), max_length=255, required=False)

    def __init__(self, *args: Any, current: RatePlanVersion | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_method_fields(current)
        if current is not None:
            self.fields["settlement_cycle"].initial = current.settlement_cycle
            self.fields["d0_surcharge"].initial = current.d0_surcharge_rate or None
        self.fields["effective_from"].help_text = _("Today or later: history is never rewritten.")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        self.clean_rules()
        return data


class PlanAssignForm(BootstrapMixin, forms.Form):
    plan = forms.ChoiceField(label=_("Rate plan"))
    effective_from = forms.DateField(label=_("Effective from"), widget=DATE)
    terminal = forms.CharField(
        label=_("Only for terminal (SN)"),
        required=False,
        max_length=32,
        help_text=_("Leave empty for all the merchant's terminals."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "class": "font-monospace"}),
    )
    d0_settlement = forms.BooleanField(label=_("Same-day settlement (D0)"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["plan"]).choices = any_choice(_("Choose a plan…")) + plan_choices(
            competitors=False
        )
        self.fields["effective_from"].initial = today()

    def clean_terminal(self) -> str:
        return self.cleaned_data["terminal"].strip().upper()
