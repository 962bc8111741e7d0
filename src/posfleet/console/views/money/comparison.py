"""The cost comparison page ("should I switch?"): every plan's total cost for the merchant's real
transactions over the period — month by month (transaction fees and the service and SIM fees' share),
the average per month with sales, and once what switching costs (each line explained) — as a chart, a
table and a verdict; and, when one of our plans would cost less, the offer to ask for it (a plan change
request, ADR 0027) or the state of the request already made."""

from __future__ import annotations

from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from posfleet.billing.comparison import (
    MAX_MONTHS,
    Comparison,
    compare_plans,
    default_period,
)
from posfleet.billing.comparison_words import line_text, verdict
from posfleet.billing.selectors import latest_plan_change
from posfleet.billing.statements import Month
from posfleet.billing.statements.figures import method_label
from posfleet.console.forms import inverted_range
from posfleet.console.views.base import console_login_required, render_page
from posfleet.console.views.money.common import merchant_in_scope, signed_in
from posfleet.console.views.money.plan_changes import PlanChangeForm, change_card
from posfleet.iam.forms import BootstrapMixin
from posfleet.platform.clock import today
from posfleet.platform.money import format_fen

PERIODS = (3, 6, 12)


class PeriodForm(BootstrapMixin, forms.Form):
    """The months to compare. A period that ends before it starts is refused (``range_error``)."""

    range_error = ""

    start = forms.CharField(
        label=gettext_lazy("From month"), required=False, widget=forms.TextInput(attrs={"type": "month"})
    )
    end = forms.CharField(
        label=gettext_lazy("To month"), required=False, widget=forms.TextInput(attrs={"type": "month"})
    )

    def period(self) -> tuple[Month, Month]:
        """The chosen months, or the last six whole months when the choice is missing or invalid; as
        chosen when they are in the wrong order (``range_error`` then says so)."""
        first, last = default_period(months=6)
        if not self.is_valid():
            return first, last
        try:
            start = Month.parse(self.cleaned_data["start"]) if self.cleaned_data["start"] else first
            end = Month.parse(self.cleaned_data["end"]) if self.cleaned_data["end"] else last
        except ValueError:
            self.add_error(None, _("Choose months such as 2026-05."))
            return first, last
        self.range_error = inverted_range(start, end, field="start")
        if self.range_error:
            return start, end
        current = Month.of(today())
        end = min(end, current)
        start = min(start, end)
        if (end.year - start.year) * 12 + end.month - start.month >= MAX_MONTHS:
            start = end.plus(-(MAX_MONTHS - 1))
        return start, end


def conclusion(result: Comparison) -> str:
    """One plain paragraph: which plan is cheaper over the period, everything included, and why."""
    return verdict(result)


def _chart(result: Comparison) -> dict[str, Any]:
    return {
        "labels": [m.short_label for m in result.months],
        "plans": [
            {
                "name": p.name,
                "code": p.code,
                "current": p.is_current,
                "competitor": p.is_competitor,
                "complete": p.complete,
                "values": p.monthly_fen,
                "texts": [format_fen(v) for v in p.monthly_fen],
            }
            for p in result.plans
        ],
    }


@console_login_required
@require_GET
def comparison_view(request: HttpRequest, mid: str) -> HttpResponse:
    merchant = merchant_in_scope(signed_in(request), mid)
    form = PeriodForm(request.GET)
    first, last = form.period()
    presets = []
    for n in PERIODS:
        start, end = default_period(months=n)
        presets.append({"months": n, "start": str(start), "end": str(end)})
    if form.range_error:  # the form with the months as typed and why; no comparison
        context = {"merchant": merchant, "form": form, "first": first, "last": last, "presets": presets}
        return render_page(request, "console/money/comparison.html", context)
    result = compare_plans(merchant_id=merchant.pk, first=first, last=last)
    user = signed_in(request)
    change = latest_plan_change(merchant.pk)
    waiting = change is not None and change.status == "requested"
    offer = result.best_ours
    may_request = offer is not None and not waiting and user.has_perm("billing.request_plan_change", merchant)
    context = {
        "merchant": merchant,
        "form": form,
        "first": result.months[0],
        "last": result.months[-1],
        "result": result,
        "rows": [
            {
                "month": month,
                "sales_fen": result.sales_fen[i],
                "actual_fen": result.actual_fees_fen[i],
                "with_sales": result.with_sales[i],
                "costs": [(p.monthly_fen[i], p.is_current) for p in result.plans],
            }
            for i, month in enumerate(result.months)
        ],
        "breakdown": [
            {
                "plan": p,
                "lines": [{"line": line, "text": line_text(line)} for line in p.lines],
            }
            for p in result.plans
        ],
        "offer": offer if may_request else None,
        "request_form": PlanChangeForm(initial={"to_plan": offer.code}) if may_request and offer else None,
        "change": change_card(user, change) if change is not None else None,
        "conclusion": conclusion(result),
        "chart": _chart(result),
        "presets": presets,
        "mix": [(method_label(m), amount) for m, amount in result.mix_fen.items()],
        "incomplete": [
            (p, [(method_label(m), p.unpriced_fen[m]) for m in p.unpriced_methods])
            for p in result.plans
            if not p.complete
        ],
    }
    return render_page(request, "console/money/comparison.html", context)
