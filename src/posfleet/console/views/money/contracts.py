"""Service contracts: the list, an offer for a bound or active terminal (admin, or the agent that
signed the merchant), the contract page with every money term, and the merchant's acceptance."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from posfleet.billing import selectors as money
from posfleet.billing.models import ServiceContract
from posfleet.billing.services.contracts import add_months, contract_accept, contract_offer, penalty_for
from posfleet.console.views.base import console_login_required, render_page
from posfleet.console.views.money.common import (
    forbidden,
    may_accept_contract,
    may_offer_contract,
    may_release_deposit,
    signed_in,
)
from posfleet.console.views.money.forms import ContractAcceptForm, ContractOfferForm
from posfleet.fleet import selectors as fleet
from posfleet.fleet.states import Status
from posfleet.iam.models import Role
from posfleet.iam.web import actor_from_request
from posfleet.platform.clock import today
from posfleet.platform.errors import DomainError, NotFound

OFFERABLE = {Status.BOUND, Status.ACTIVE}
CONTRACTS_PAGE = 50
PENALTY_ROWS = 13


def _contract(request: HttpRequest, pk: int) -> ServiceContract:
    try:
        return money.contract_for(signed_in(request), pk)
    except NotFound as exc:
        raise Http404 from exc


@console_login_required
@require_http_methods(["GET"])
def contract_list(request: HttpRequest) -> HttpResponse:
    user = signed_in(request)
    status = request.GET.get("status", "")
    contracts = money.contracts_visible_to(user).order_by("-created_at", "-pk")
    if status in ServiceContract.Status.values:
        contracts = contracts.filter(status=status)
    page = Paginator(contracts, CONTRACTS_PAGE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "status": status,
        "statuses": ServiceContract.Status.choices,
        "may_offer": user.role in {Role.ADMIN, Role.AGENT},
    }
    return render_page(request, "console/money/contracts.html", context)


@console_login_required
@require_http_methods(["GET", "POST"])
def contract_new(request: HttpRequest) -> HttpResponse:
    user = signed_in(request)
    if user.role not in {Role.ADMIN, Role.AGENT}:
        return forbidden(request, _("Contracts are offered by platform admins and by the merchant's agent."))
    initial = {"terminal": request.GET.get("sn", "")[:32]}
    form = ContractOfferForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        terminal = fleet.terminals_visible_to(user).filter(sn=form.cleaned_data["terminal"]).first()
        plan = money.rate_plans().filter(code=form.cleaned_data["plan"]).first()
        if terminal is None:
            form.add_error("terminal", _("There is no terminal with this SN in your scope."))
        elif terminal.status not in OFFERABLE or terminal.merchant is None:
            form.add_error(
                "terminal", _("A contract is offered for a terminal bound to a merchant or active.")
            )
        elif not may_offer_contract(user, terminal.merchant):
            form.add_error("terminal", _("You may not offer contracts to this terminal's merchant."))
        elif plan is None:
            form.add_error("plan", _("Choose a plan."))
        else:
            try:
                contract = contract_offer(
                    actor=actor_from_request(request),
                    terminal_id=terminal.pk,
                    merchant=terminal.merchant,
                    plan=plan,
                    terms=form.terms(),
                )
            except DomainError as exc:
                field = exc.params.get("field")
                form.add_error(field if field in form.fields else None, str(exc.detail))
            else:
                messages.success(
                    request,
                    _("The offer is ready for %(merchant)s to read and accept.")
                    % {"merchant": terminal.merchant.name},
                )
                return HttpResponseRedirect(reverse("console:contract", args=[contract.pk]))
    return render_page(request, "console/money/contract_form.html", {"form": form})


def _penalty_table(contract: ServiceContract) -> list[dict[str, Any]]:
    """What ending would cost after each month served, up to the minimum term (about a dozen rows)."""
    if not contract.min_term_months:
        return []
    step = max(1, -(-contract.min_term_months // (PENALTY_ROWS - 1)))
    served = [*range(0, contract.min_term_months, step), contract.min_term_months]
    rows = []
    for months in served:
        day = add_months(contract.starts_on, months)
        rows.append({"months": months, "day": day, "penalty_fen": penalty_for(contract, day)})
    return rows


def _fee_schedule(contract: ServiceContract) -> list[dict[str, Any]]:
    """The annual fees: as recorded once accepted, as they will fall due while only offered."""
    recorded = list(contract.fees_due.all())
    if recorded:
        return [
            {
                "period": f.period,
                "due_on": f.due_on,
                "amount_fen": f.amount_fen,
                "charged": f.journal_id is not None,
            }
            for f in recorded
        ]
    if not contract.annual_fee_fen:
        return []
    return [
        {
            "period": year + 1,
            "due_on": add_months(contract.starts_on, 12 * year),
            "amount_fen": contract.annual_fee_fen,
        }
        for year in range(contract.term_months // 12)
    ]


def _rules(contract: ServiceContract) -> list[Any]:
    day = max(contract.starts_on, today())
    version = contract.plan.versions.filter(effective_from__lte=day).order_by("-effective_from").first()
    return list(version.rules.all()) if version is not None else []


@console_login_required
@require_http_methods(["GET"])
def contract_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = signed_in(request)
    contract = _contract(request, pk)
    deposit = (
        getattr(contract, "deposit", None) if contract.status != ServiceContract.Status.OFFERED else None
    )
    offered = contract.status == ServiceContract.Status.OFFERED
    context = {
        "contract": contract,
        "ends_on": add_months(contract.starts_on, contract.term_months),
        "min_term_ends_on": add_months(contract.starts_on, contract.min_term_months),
        "penalty_today_fen": penalty_for(contract)
        if contract.status == ServiceContract.Status.ACTIVE
        else None,
        "penalty_table": _penalty_table(contract),
        "fees": _fee_schedule(contract),
        "rules": _rules(contract),
        "damage": [
            (g, contract.damage_prices.get(g)) for g in ("A", "B", "C") if g in contract.damage_prices
        ],
        "deposit": deposit,
        "accept_form": ContractAcceptForm()
        if offered and may_accept_contract(user, contract.merchant)
        else None,
        "may_release": may_release_deposit(user),
    }
    return render_page(request, "console/money/contract.html", context)


@console_login_required
@require_http_methods(["POST"])
def contract_accept_view(request: HttpRequest, pk: int) -> HttpResponse:
    user = signed_in(request)
    contract = _contract(request, pk)
    if not may_accept_contract(user, contract.merchant):
        return forbidden(request, _("Only the merchant accepts its contract."))
    form = ContractAcceptForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Tick the box to confirm that you accept the terms."))
        return HttpResponseRedirect(reverse("console:contract", args=[contract.pk]))
    try:
        contract_accept(actor=actor_from_request(request), contract=contract)
    except DomainError as exc:
        messages.error(request, str(exc.detail))
    else:
        messages.success(request, _("Contract accepted. Welcome aboard!"))
    return HttpResponseRedirect(reverse("console:contract", args=[contract.pk]))
