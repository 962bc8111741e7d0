"""Closure cases (注销工单) in the console: the lists (open, waiting for review, late, stuck, done) and a
case's page — what happens next in plain words, the quote, the step timeline with its evidence, the
return instructions — with the actions the viewer may take: withdraw, approve (a fresh TOTP code) or
reject (a note), give the parcel's tracking number, start a step that needs attention again.

Everything shown comes from ``closure.selectors`` (``case_view`` is the read model the API uses too);
every action calls its one service in ``closure.services``; a refusal shows its message on the form and
changes nothing. Asking for a closure is ``closure_request.py``, the warehouse is ``closure_returns.py``.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_POST

from posfleet.closure import selectors
from posfleet.closure.services import (
    case_for,
    closure_decide,
    closure_report_shipment,
    closure_step_retry,
    closure_withdraw,
)
from posfleet.closure.states import CaseStatus, ClosureReason, StepName, StepState, review_overdue
from posfleet.console.closure_timeline import timeline
from posfleet.console.views.base import console_login_required, render_page
from posfleet.console.views.money.common import forbidden, signed_in
from posfleet.iam.forms import BootstrapMixin, WithTotpMixin
from posfleet.iam.models import Role, User
from posfleet.iam.web import actor_from_form, actor_from_request, step_up_remaining_seconds
from posfleet.platform.clock import now
from posfleet.platform.errors import DomainError, NotFound, PermissionDenied

PAGE = 25
DETAIL = "console/closures/detail.html"
TABS = (
    ("open", gettext_lazy("Open")),
    ("review", gettext_lazy("Waiting for review")),
    ("late", gettext_lazy("Late")),
    ("stuck", gettext_lazy("Stuck")),
    ("done", gettext_lazy("Done")),
)
STATUS_TONES = {
    CaseStatus.REQUESTED: "warning",
    CaseStatus.RUNNING: "primary",
    CaseStatus.COMPLETED: "success",
    CaseStatus.REJECTED: "danger",
    CaseStatus.WITHDRAWN: "secondary",
}


def reason_label(value: str) -> str:
    try:
        return str(ClosureReason(value).label)
    except ValueError:
        return value


def may_handle_returns(user: User) -> bool:
    return user.has_perm("closure.handle_return")


# -- the lists -----------------------------------------------------------------------------------------


@console_login_required
@require_GET
def closure_list(request: HttpRequest) -> HttpResponse:
    user = signed_in(request)
    reviewer = user.has_perm("closure.review_closure")
    keys = [key for key, _label in TABS]
    tab = request.GET.get("tab") or ("review" if reviewer else "open")
    if tab not in keys:
        tab = "open"
    visible = selectors.cases_visible_to(user)
    moment = now()
    qs = selectors.filter_cases(visible, tab, moment)
    order = ("review_due_at", "id") if tab in ("review", "late") else ("-requested_at", "-id")
    page = Paginator(qs.order_by(*order), PAGE).get_page(request.GET.get("page"))
    cases = list(page.object_list)
    info = selectors.case_rows(cases)
    rows = []
    for case in cases:
        current = info[case.pk].current
        rows.append(
            {
                "case": case,
                "info": info[case.pk],
                "reason": reason_label(case.reason),
                "tone": STATUS_TONES.get(CaseStatus(case.status), "secondary"),
                "review_overdue": review_overdue(case.status, case.review_due_at, moment),
                "return_overdue": bool(
                    current is not None
                    and current.name == StepName.RETURN
                    and case.return_due_on
                    and case.return_due_on < moment.date()
                ),
            }
        )
    return render_page(
        request,
        "console/closures/list.html",
        {
            "page": page,
            "rows": rows,
            "tab": tab,
            "tabs": [
                (key, label, selectors.filter_cases(visible, key, moment).count()) for key, label in TABS
            ],
            "may_request": user.role in (Role.ADMIN, Role.AGENT, Role.MERCHANT),
            "may_handle_returns": may_handle_returns(user),
        },
    )


# -- a case's actions' forms -----------------------------------------------------------------------------


class WithdrawForm(BootstrapMixin, forms.Form):
    note = forms.CharField(
        label=gettext_lazy("Why (optional)"),
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2, "data-testid": "withdraw-note"}),
    )


class ApproveForm(WithTotpMixin, BootstrapMixin, forms.Form):
    note = forms.CharField(
        label=gettext_lazy("Note (optional)"),
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2, "data-testid": "approve-note"}),
    )


class RejectForm(BootstrapMixin, forms.Form):
    note = forms.CharField(
        label=gettext_lazy("Why the closure is rejected (the requester reads it)"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2, "data-testid": "reject-note"}),
    )


class ShipmentForm(BootstrapMixin, forms.Form):
    tracking_no = forms.CharField(
        label=gettext_lazy("Tracking number"),
        max_length=64,
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "class": "font-monospace", "data-testid": "tracking-no"}
        ),
    )


class RetryForm(forms.Form):
    step = forms.ChoiceField(choices=[(name.value, name.value) for name in StepName])


FORMS: dict[str, type[forms.Form]] = {
    "withdraw": WithdrawForm,
    "approve": ApproveForm,
    "reject": RejectForm,
    "shipment": ShipmentForm,
    "retry": RetryForm,
}


def _form(action: str, request: HttpRequest, *, bound: bool, needs_code: bool) -> forms.Form:
    data = request.POST if bound else None
    if action == "approve":
        return ApproveForm(data, needs_code=needs_code)
    return FORMS[action](data)


# -- a case's page ----------------------------------------------------------------------------------------


def _case(request: HttpRequest, number: str) -> Any:
    try:
        return case_for(actor_from_request(request), number)
    except NotFound as exc:
        raise Http404 from exc


def _context(request: HttpRequest, case: Any, bound: dict[str, forms.Form] | None = None) -> dict[str, Any]:
    user = signed_in(request)
    view = selectors.case_view(user, case)
    remaining = step_up_remaining_seconds(request)
    needs_code = remaining == 0
    running = case.status == CaseStatus.RUNNING
    return_step = next((s for s in view.steps if s.name == StepName.RETURN), None)
    may = {
        "withdraw": "withdraw" in view.actions,
        "approve": "approve" in view.actions,
        "reject": "reject" in view.actions,
        "shipment": bool(
            running
            and return_step is not None
            and return_step.state == StepState.WAITING
            and user.has_perm("closure.report_shipment", case.merchant)
        ),
        "retry": running and user.has_perm("closure.retry_step", case.merchant),
    }
    forms_ = {
        action: (bound or {}).get(action) or _form(action, request, bound=False, needs_code=needs_code)
        for action in FORMS
        if action != "retry"
    }
    steps = timeline(
        view.steps,
        sns=selectors.case_terminal_sns(case),
        staff=user.is_provider_staff,
        may_retry=may["retry"],
    )
    finished = sum(1 for s in view.steps if s.state in (StepState.DONE, StepState.SKIPPED))
    quote = case.quote or {}
    return {
        "case": case,
        "view": view,
        "steps": steps,
        "finished": finished,
        "total": len(view.steps),
        "percent": round(100 * finished / len(view.steps)) if view.steps else 0,
        "approved": case.status in (CaseStatus.RUNNING, CaseStatus.COMPLETED),
        "ended_unclosed": case.status in (CaseStatus.WITHDRAWN, CaseStatus.REJECTED),
        "tone": STATUS_TONES.get(CaseStatus(case.status), "secondary"),
        "reason": reason_label(case.reason),
        "quote": quote,
        "is_merchant": user.role == Role.MERCHANT,
        "may": may,
        "forms": forms_,
        # A refused action's words (its form's non-field errors), shown at the top of the page: the form
        # itself may not be on the page any more (the step it needed has moved on).
        "action_errors": [str(e) for f in (bound or {}).values() for e in f.non_field_errors()],
        "needs_code": needs_code,
        "step_up_minutes": (remaining + 59) // 60,
        "return_overdue": bool(
            return_step is not None
            and return_step.state == StepState.WAITING
            and case.return_due_on
            and case.return_due_on < now().date()
        ),
        "may_handle_returns": may_handle_returns(user),
    }


@console_login_required
@require_GET
def closure_detail(request: HttpRequest, number: str) -> HttpResponse:
    case = _case(request, number)
    return render_page(request, DETAIL, _context(request, case), partial="steps")


DONE_MESSAGES = {
    "withdraw": gettext_lazy(
        "The closure request is withdrawn; terminals that were active are active again."
    ),
    "approve": gettext_lazy("The closure is approved: its steps start now."),
    "reject": gettext_lazy("The closure is rejected; terminals that were active are active again."),
    "shipment": gettext_lazy("Thank you: the tracking number is recorded."),
    "retry": gettext_lazy("The step starts again."),
}


@sensitive_post_parameters("totp")
@console_login_required
@never_cache
@require_POST
def closure_action(request: HttpRequest, number: str, action: str) -> HttpResponse:
    """One action of the case page. A refusal re-shows the page with the message on the form."""
    if action not in FORMS:
        raise Http404
    case = _case(request, number)
    user = signed_in(request)
    view = selectors.case_view(user, case)
    needs_code = step_up_remaining_seconds(request) == 0
    # A code is only asked of (and spent by) someone the page offers approval to: others are refused by
    # the service without their code being used.
    form = _form(action, request, bound=True, needs_code=needs_code and "approve" in view.actions)
    if form.is_valid():
        actor = actor_from_form(request, form) if action == "approve" else actor_from_request(request)
        if actor is not None:
            data = form.cleaned_data
            try:
                if action == "withdraw":
                    closure_withdraw(actor=actor, number=case.number, note=data.get("note", ""))
                elif action in ("approve", "reject"):
                    closure_decide(
                        actor=actor, number=case.number, decision=action, note=data.get("note", "")
                    )
                elif action == "shipment":
                    closure_report_shipment(actor=actor, number=case.number, tracking_no=data["tracking_no"])
                else:
                    closure_step_retry(actor=actor, number=case.number, step=data["step"])
            except NotFound as exc:
                raise Http404 from exc
            except PermissionDenied as exc:
                return forbidden(request, str(exc.detail))
            except DomainError as exc:
                field = exc.params.get("field")
                form.add_error(field if field in form.fields else None, str(exc.detail))
            else:
                messages.success(request, str(DONE_MESSAGES[action]))
                return HttpResponseRedirect(reverse("console:closure", args=[case.number]))
    case = _case(request, number)  # as it is now
    return render_page(request, DETAIL, _context(request, case, {action: form}))
