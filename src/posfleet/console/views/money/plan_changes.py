"""Plan change requests in the console (ADR 0027): a merchant (or its agent) asks for the plan the
comparison found cheaper, from the comparison page; the list of requests (scoped: staff see all, an
agent its merchants', a merchant its own), where the admin approves or rejects (with a reason) and the
requester's side withdraws. Each button calls one service; a refusal shows its message and changes
nothing; another tenant's request is not there (404)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from posfleet.billing import selectors as money
from posfleet.billing.models import PlanChangeRequest
from posfleet.billing.plan_change_states import (
    COMMAND_LABELS,
    DECISIONS,
    PlanChangeCommand,
    PlanChangeStatus,
    commands_from,
)
from posfleet.billing.services.plan_changes import plan_change_decide, plan_change_request
from posfleet.billing.statements import Month
from posfleet.console.views.base import console_login_required, render_page
from posfleet.console.views.money.common import forbidden, merchant_in_scope, signed_in
from posfleet.console.views.money.forms import DATE
from posfleet.iam.forms import BootstrapMixin
from posfleet.iam.models import User
from posfleet.iam.web import actor_from_request
from posfleet.platform.clock import today
from posfleet.platform.errors import DomainError, NotFound, PermissionDenied

PAGE = 50
TABS = ("requested", "all")


class PlanChangeForm(BootstrapMixin, forms.Form):
    """Ask for ``to_plan`` (one of ours, named by the comparison) from a day; the service checks again."""

    to_plan = forms.SlugField(max_length=40, widget=forms.HiddenInput)
    effective_from = forms.DateField(label=gettext_lazy("From"), widget=DATE)
    note = forms.CharField(
        label=gettext_lazy("Note (optional)"),
        required=False,
        max_length=255,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["effective_from"].initial = Month.of(today()).plus(1).first_day


def change_card(user: User, change: PlanChangeRequest) -> dict[str, Any]:
    """What the comparison page shows of the merchant's request: the request and who may withdraw it."""
    return {
        "request": change,
        "status_label": PlanChangeStatus(change.status).label,
        "may_withdraw": PlanChangeCommand.WITHDRAW in commands_from(change.status)
        and user.has_perm("billing.request_plan_change", change.merchant),
    }


def _comparison_url(mid: str, start: str, end: str) -> str:
    """The comparison page of ``mid``, for the period it was on when valid months are given."""
    url = reverse("console:comparison", args=[mid])
    try:
        period = {"start": str(Month.parse(start)), "end": str(Month.parse(end))}
    except ValueError:
        return url
    return f"{url}?{urlencode(period)}"


@console_login_required
@require_POST
def plan_change_new(request: HttpRequest, mid: str) -> HttpResponse:
    """``POST /console/merchants/<mid>/plan-changes/``: ask for the plan; back to the comparison."""
    user = signed_in(request)
    merchant = merchant_in_scope(user, mid)
    back = _comparison_url(merchant.mid, request.POST.get("start", ""), request.POST.get("end", ""))
    if not user.has_perm("billing.request_plan_change", merchant):
        return forbidden(request, _("The merchant or its agent asks for a plan change."))
    form = PlanChangeForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
        return HttpResponseRedirect(back)
    data = form.cleaned_data
    plan = money.rate_plans().filter(code=data["to_plan"]).first()
    if plan is None:
        messages.error(request, _("There is no rate plan with this code."))
        return HttpResponseRedirect(back)
    try:
        plan_change_request(
            actor=actor_from_request(request),
            merchant=merchant,
            to_plan=plan,
            effective_from=data["effective_from"],
            note=data["note"],
        )
    except PermissionDenied:
        return forbidden(request, _("The merchant or its agent asks for a plan change."))
    except DomainError as exc:
        messages.error(request, str(exc.detail))
    else:
        messages.success(
            request,
            _("Your request to move to %(plan)s from %(day)s was sent; the provider will decide.")
            % {"plan": plan.name, "day": data["effective_from"].isoformat()},
        )
    return HttpResponseRedirect(back)


@console_login_required
@require_GET
def plan_change_list(request: HttpRequest) -> HttpResponse:
    """``/console/plan-changes/``: the requests of the user's scope, waiting ones (``tab=requested``,
    the default) or all, newest first; with the buttons the user may press."""
    user = signed_in(request)
    tab = request.GET.get("tab", "requested")
    if tab not in TABS:
        tab = "all"
    requests = money.plan_change_requests_visible_to(user)
    waiting = requests.filter(status=PlanChangeStatus.REQUESTED).count()
    if tab == "requested":
        requests = requests.filter(status=PlanChangeStatus.REQUESTED)
    page = Paginator(requests.order_by("-requested_at", "-id"), PAGE).get_page(request.GET.get("page"))
    rows = []
    for change in page.object_list:
        allowed = commands_from(change.status)
        decide = [
            c
            for c in allowed
            if c in DECISIONS and user.has_perm("billing.decide_plan_change", change.merchant)
        ]
        withdraw = PlanChangeCommand.WITHDRAW in allowed and user.has_perm(
            "billing.request_plan_change", change.merchant
        )
        rows.append(
            {
                "request": change,
                "status_label": PlanChangeStatus(change.status).label,
                "may_decide": bool(decide) and change.requested_by_id != user.pk,
                "may_withdraw": withdraw,
            }
        )
    context = {
        "page": page,
        "rows": rows,
        "tab": tab,
        "tabs": [("requested", _("Waiting")), ("all", _("All"))],
        "waiting": waiting,
        "labels": {c.value: COMMAND_LABELS[c] for c in PlanChangeCommand},
    }
    return render_page(request, "console/money/plan_changes.html", context)


@console_login_required
@require_POST
def plan_change_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """One button (approve, reject with ``reason``, withdraw); back to the comparison page when it was
    pressed there (``back=compare``), else to the list."""
    user = signed_in(request)
    if action not in {c.value for c in PlanChangeCommand}:
        raise Http404
    try:
        done = plan_change_decide(
            actor=actor_from_request(request),
            request_id=pk,
            action=action,
            reason=request.POST.get("reason", ""),
        )
    except NotFound as exc:
        raise Http404 from exc  # others' requests are simply not there
    except PermissionDenied as exc:
        return forbidden(request, str(exc.detail))
    except DomainError as exc:
        messages.error(request, str(exc.detail))
        change = money.plan_change_for(user, pk)
    else:
        change = done
        plan = change.to_plan.name
        if change.status == PlanChangeStatus.APPROVED and change.assignment is not None:
            text = _("Approved: %(mid)s moves to %(plan)s from %(day)s.") % {
                "mid": change.merchant.mid,
                "plan": plan,
                "day": change.assignment.effective_from.isoformat(),
            }
        elif change.status == PlanChangeStatus.REJECTED:
            text = _("The request of %(mid)s to move to %(plan)s was rejected.") % {
                "mid": change.merchant.mid,
                "plan": plan,
            }
        else:
            text = _("The request to move to %(plan)s was withdrawn.") % {"plan": plan}
        messages.success(request, text)
    if request.POST.get("back") == "compare":
        return HttpResponseRedirect(reverse("console:comparison", args=[change.merchant.mid]))
    return HttpResponseRedirect(reverse("console:plan_changes"))
