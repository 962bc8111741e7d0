"""The money page: a merchant's balances, takings, settlements, statements, deposits, contracts and
what falls due next. Merchants land on their own; staff and agents first choose a merchant."""

from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_GET

from posfleet.billing import selectors as money
from posfleet.billing.models import AccountKind, ServiceContract
from posfleet.billing.services.contracts import add_months, penalty_for
from posfleet.billing.statements import Month, statement_months
from posfleet.console.views.base import console_login_required, render_page
from posfleet.console.views.money.common import (
    may_manage_plans,
    may_offer_contract,
    may_release_deposit,
    merchant_in_scope,
    own_merchant,
    signed_in,
)
from posfleet.platform.clock import today
from posfleet.platform.money import format_fen

CHART_MONTHS = 12
CHOOSER_PAGE = 25


@console_login_required
@require_GET
def money_home(request: HttpRequest) -> HttpResponse:
    """``/console/money/``: a merchant's own money page; for staff and agents, the merchant chooser."""
    user = signed_in(request)
    merchant = own_merchant(user)
    if merchant is not None:
        return _money_page(request, merchant)
    q = request.GET.get("q", "")[:40]
    page = Paginator(money.merchants_with_balances(user, q), CHOOSER_PAGE).get_page(request.GET.get("page"))
    rows = [
        {
            "merchant": m,
            "payable_fen": -m.payable_raw,
            "deposit_fen": -m.deposit_raw,
            "fees_fen": m.fees_fen,
            "url": reverse("console:merchant_money", args=[m.mid]),
        }
        for m in page.object_list
    ]
    return render_page(
        request, "console/money/choose.html", {"page": page, "rows": rows, "q": q}, partial="results"
    )


@console_login_required
@require_GET
def merchant_money(request: HttpRequest, mid: str) -> HttpResponse:
    user = signed_in(request)
    return _money_page(request, merchant_in_scope(user, mid))


def _chart(merchant_id: int) -> dict[str, Any]:
    last = Month.of(today())
    figures = money.monthly_figures(merchant_id, last.plus(-(CHART_MONTHS - 1)), last)
    return {
        "labels": [f.month.short_label for f in figures],
        "takings": [f.takings_fen for f in figures],
        "fees": [f.fees_fen for f in figures],
        "takings_text": [format_fen(f.takings_fen) for f in figures],
        "fees_text": [format_fen(f.fees_fen) for f in figures],
    }


def _contracts(user: Any, merchant_id: int) -> list[dict[str, Any]]:
    rows = []
    contracts = (
        money.contracts_visible_to(user)
        .filter(merchant_id=merchant_id)
        .order_by("status", "-starts_on", "pk")
    )
    for contract in contracts:
        active = contract.status == ServiceContract.Status.ACTIVE
        rows.append(
            {
                "contract": contract,
                "ends_on": add_months(contract.starts_on, contract.term_months),
                "min_term_ends_on": add_months(contract.starts_on, contract.min_term_months),
                "penalty_today_fen": penalty_for(contract) if active else None,
            }
        )
    return rows


def _money_page(request: HttpRequest, merchant: Any) -> HttpResponse:
    user = signed_in(request)
    day = today()
    balances = money.balances_of(merchant.organisation_id)
    deposits = list(money.deposits_visible_to(user).filter(merchant_id=merchant.pk).order_by("-collected_at"))
    months = statement_months(merchant.pk, until=day, limit=12)
    context = {
        "merchant": merchant,
        "payable_fen": balances[AccountKind.SETTLEMENT_PAYABLE],
        "deposit_fen": balances[AccountKind.DEPOSIT_HELD],
        "fees_fen": balances[AccountKind.FEES_RECEIVABLE],
        "penalties_fen": balances[AccountKind.PENALTIES_RECEIVABLE],
        "fees_due": money.fees_due_next(merchant.pk),
        "settlements": money.recent_settlements(merchant.pk),
        "months": months,
        "latest_complete": next((m for m in months if m < Month.of(day)), None),
        "deposits": deposits,
        "contracts": _contracts(user, merchant.pk),
        "assignment": money.current_assignment(merchant.pk, day),
        "upcoming": money.upcoming_assignments(merchant.pk, day),
        "chart": _chart(merchant.pk),
        "may_manage_plans": may_manage_plans(user),
        "may_offer": may_offer_contract(user, merchant),
        "may_release": may_release_deposit(user),
        "today": day,
    }
    return render_page(request, "console/money/merchant.html", context)
