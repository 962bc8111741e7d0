"""Rate plans for staff: the catalogue with versions and rules, a new plan (ours or a competitor's), a
new version from a date, and a plan for a merchant (or one terminal) from a date.

A refused form changes nothing: the service is called only with a valid form, and a refusal from the
service (its own checks, in its transaction) is shown on the form."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from posfleet.billing import selectors as money
from posfleet.billing.models import RatePlan
from posfleet.billing.services.plans import plan_assign, plan_create, plan_version_add
from posfleet.console.views.base import console_login_required, render_page
from posfleet.console.views.money.common import (
    forbidden,
    is_staff_or_agent,
    may_manage_plans,
    merchant_in_scope,
    signed_in,
)
from posfleet.console.views.money.plan_forms import PlanAssignForm, PlanVersionForm, RatePlanForm
from posfleet.fleet import selectors as fleet
from posfleet.iam.web import actor_from_request
from posfleet.platform.clock import today
from posfleet.platform.errors import DomainError, NotFound


def _refused(form: Any, exc: DomainError) -> None:
    """Show a service's refusal on the field it names (or above the form)."""
    field = exc.params.get("field")
    target = field if field in form.fields else None
    form.add_error(target, str(exc.detail))


def _plan(code: str) -> RatePlan:
    try:
        return money.rate_plan_for(code)
    except NotFound as exc:
        raise Http404 from exc


@console_login_required
@require_http_methods(["GET"])
def plan_list(request: HttpRequest) -> HttpResponse:
    user = signed_in(request)
    if not is_staff_or_agent(user):
        return forbidden(request)
    plans = list(money.rate_plans().order_by("is_competitor", "code"))
    day = today()
    rows = []
    for plan in plans:
        versions = list(plan.versions.all())
        current = next((v for v in versions if v.effective_from <= day), None)
        rows.append({"plan": plan, "versions": versions, "current": current})
    waiting = money.plan_change_requests_visible_to(user).filter(status="requested").count()
    context = {"rows": rows, "may_manage": may_manage_plans(user), "today": day, "waiting_changes": waiting}
    return render_page(request, "console/money/plans.html", context)


@console_login_required
@require_http_methods(["GET"])
def plan_detail(request: HttpRequest, code: str) -> HttpResponse:
    user = signed_in(request)
    if not is_staff_or_agent(user):
        return forbidden(request)
    plan = _plan(code)
    day = today()
    versions = list(plan.versions.all())
    current = next((v for v in versions if v.effective_from <= day), None)
    assignments = money.plan_assignments_visible_to(user, plan).order_by("-effective_from", "merchant__mid")[
        :50
    ]
    context = {
        "plan": plan,
        "versions": versions,
        "current": current,
        "assignments": assignments,
        "may_manage": may_manage_plans(user),
        "today": day,
    }
    return render_page(request, "console/money/plan.html", context)


@console_login_required
@require_http_methods(["GET", "POST"])
def plan_new(request: HttpRequest) -> HttpResponse:
    user = signed_in(request)
    if not may_manage_plans(user):
        return forbidden(request, _("Only platform admins create rate plans."))
    form = RatePlanForm(request.POST or None, initial={"effective_from": today()})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            plan = plan_create(
                actor=actor_from_request(request),
                code=data["code"],
                name=data["name"],
                rules=form.rules(),
                effective_from=data["effective_from"],
                is_competitor=data["is_competitor"],
                provider_name=data["provider_name"],
                settlement_cycle=data["settlement_cycle"],
                d0_surcharge_rate=data["d0_surcharge"] or Decimal(0),
                annual_fee_fen=data["annual_fee"] or 0,
                deposit_fen=data["deposit"] or 0,
            )
        except DomainError as exc:
            _refused(form, exc)
        else:
            messages.success(request, _("Rate plan %(name)s created.") % {"name": plan.name})
            return HttpResponseRedirect(reverse("console:plan", args=[plan.code]))
    return render_page(request, "console/money/plan_form.html", {"form": form, "plan": None})


@console_login_required
@require_http_methods(["GET", "POST"])
def plan_version_new(request: HttpRequest, code: str) -> HttpResponse:
    user = signed_in(request)
    if not may_manage_plans(user):
        return forbidden(request, _("Only platform admins change rate plans."))
    plan = _plan(code)
    current = next(iter(plan.versions.all()), None)
    form = PlanVersionForm(request.POST or None, current=current, initial={"effective_from": today()})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            version = plan_version_add(
                actor=actor_from_request(request),
                plan=plan,
                effective_from=data["effective_from"],
                rules=form.rules(),
                settlement_cycle=data["settlement_cycle"],
                d0_surcharge_rate=data["d0_surcharge"] or Decimal(0),
                note=data["note"],
            )
        except DomainError as exc:
            _refused(form, exc)
        else:
            messages.success(
                request,
                _("Version %(n)s of %(name)s applies from %(day)s.")
                % {"n": version.number, "name": plan.name, "day": version.effective_from.isoformat()},
            )
            return HttpResponseRedirect(reverse("console:plan", args=[plan.code]))
    context = {"form": form, "plan": plan, "current": current}
    return render_page(request, "console/money/plan_form.html", context)


@console_login_required
@require_http_methods(["GET", "POST"])
def plan_assign_view(request: HttpRequest, mid: str) -> HttpResponse:
    user = signed_in(request)
    merchant = merchant_in_scope(user, mid)
    if not may_manage_plans(user):
        return forbidden(request, _("Only platform admins assign rate plans."))
    form = PlanAssignForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        terminal_id = None
        if data["terminal"]:
            terminal = (
                fleet.terminals_visible_to(user).filter(sn=data["terminal"], merchant_id=merchant.pk).first()
            )
            if terminal is None:
                form.add_error("terminal", _("This merchant has no terminal with this SN."))
            else:
                terminal_id = terminal.pk
        if not form.errors:
            try:
                plan_assign(
                    actor=actor_from_request(request),
                    merchant_id=merchant.pk,
                    merchant_mid=merchant.mid,
                    plan=_plan(data["plan"]),
                    effective_from=data["effective_from"],
                    terminal_id=terminal_id,
                    d0_settlement=data["d0_settlement"],
                )
            except DomainError as exc:
                _refused(form, exc)
            else:
                messages.success(
                    request,
                    _("%(mid)s moves to plan %(plan)s from %(day)s.")
                    % {"mid": merchant.mid, "plan": data["plan"], "day": data["effective_from"].isoformat()},
                )
                return HttpResponseRedirect(reverse("console:merchant_money", args=[merchant.mid]))
    context = {
        "form": form,
        "merchant": merchant,
        "assignment": money.current_assignment(merchant.pk, today()),
        "upcoming": money.upcoming_assignments(merchant.pk, today()),
    }
    return render_page(request, "console/money/plan_assign.html", context)
