"""Complaints in the console (投诉; ADR 0023): the list with its views (open, escalated, waiting for me,
late, answered, closed) and the handler's clock; the form a merchant raises one with; a complaint's
page with its history and the buttons the reader may press (acknowledge, answer, escalate, take the
related agent termination over, close, reopen).

Every button calls its one service function (``closure.services.complaints``); a refusal shows its
message and changes nothing.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from posfleet.closure.complaint_selectors import (
    addressees,
    categories,
    complaint_view,
    complaints_visible_to,
    filter_complaints,
)
from posfleet.closure.complaint_states import overdue
from posfleet.closure.services import (
    complaint_acknowledge,
    complaint_close,
    complaint_escalate,
    complaint_for,
    complaint_raise,
    complaint_reject,
    complaint_reopen,
    complaint_resolve,
    complaint_take_over,
)
from posfleet.closure.services.complaints import handler
from posfleet.console.views.base import console_login_required, render_page
from posfleet.console.views.money.common import forbidden, own_merchant, signed_in
from posfleet.iam.web import actor_from_request
from posfleet.platform.clock import now
from posfleet.platform.errors import DomainError, NotFound, PermissionDenied

PAGE = 25


def _tabs() -> list[tuple[str, str]]:
    return [
        ("mine", _("Waiting for me")),
        ("open", _("Open")),
        ("escalated", _("Escalated")),
        ("late", _("Late")),
        ("answered", _("Answered")),
        ("closed", _("Closed")),
        ("all", _("All")),
    ]


@console_login_required
@require_GET
def complaint_list(request: HttpRequest) -> HttpResponse:
    """``/console/complaints/``: the complaints the user may see, with the handler's clock."""
    user = signed_in(request)
    tab = request.GET.get("tab", "mine")
    if tab not in dict(_tabs()):
        tab = "all"
    qs = filter_complaints(complaints_visible_to(user), tab, user)
    page = Paginator(qs.order_by("-raised_at", "-id"), PAGE).get_page(request.GET.get("page"))
    moment = now()
    rows = [
        {
            "complaint": c,
            "handler": handler(c).value,
            "overdue": overdue(c.status, c.due_at, moment),
            "hours_left": int((c.due_at - moment).total_seconds() // 3600)
            if c.status in ("open", "acknowledged", "escalated")
            else None,
        }
        for c in page.object_list
    ]
    return render_page(
        request,
        "console/complaints/list.html",
        {
            "page": page,
            "rows": rows,
            "tab": tab,
            "tabs": _tabs(),
            "may_raise": own_merchant(user) is not None,
        },
    )


# -- raising -----------------------------------------------------------------------------------------------


class ComplaintForm(forms.Form):
    category = forms.ChoiceField(label=gettext_lazy("What is it about?"))
    to = forms.ChoiceField(label=gettext_lazy("Address it to"))
    subject = forms.CharField(label=gettext_lazy("Subject"), max_length=200)
    text = forms.CharField(
        label=gettext_lazy("What happened"), max_length=4000, widget=forms.Textarea(attrs={"rows": 5})
    )
    case = forms.CharField(
        label=gettext_lazy("Closure case number (if it is about one)"), max_length=20, required=False
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        category = self.fields["category"]
        to = self.fields["to"]
        assert isinstance(category, forms.ChoiceField)
        assert isinstance(to, forms.ChoiceField)
        category.choices = categories()
        to.choices = addressees()
        for name, field in self.fields.items():
            widget = field.widget
            widget.attrs.setdefault(
                "class", "form-select" if isinstance(widget, forms.Select) else "form-control"
            )
            widget.attrs.setdefault("data-testid", f"complaint-{name}")


@console_login_required
@require_http_methods(["GET", "POST"])
def complaint_new(request: HttpRequest) -> HttpResponse:
    user = signed_in(request)
    if own_merchant(user) is None:
        return forbidden(request, _("Complaints are raised by merchants."))
    initial = {"case": request.GET.get("case", "")[:20]}
    if initial["case"]:
        initial.update(category="closure")
    form = ComplaintForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            complaint = complaint_raise(
                actor=actor_from_request(request),
                category=data["category"],
                subject=data["subject"],
                text=data["text"],
                to=data["to"],
                case_number=data.get("case") or "",
            )
        except NotFound:
            form.add_error("case", _("There is no such closure case of yours."))
        except DomainError as exc:
            field = exc.params.get("field")
            form.add_error(field if field in form.fields else None, str(exc.detail))
        else:
            messages.success(
                request,
                _("Complaint %(number)s is raised. You can follow it on this page.")
                % {"number": complaint.number},
            )
            return HttpResponseRedirect(reverse("console:complaint", args=[complaint.number]))
    return render_page(request, "console/complaints/form.html", {"form": form})


# -- one complaint -------------------------------------------------------------------------------------


@console_login_required
@require_GET
def complaint_detail(request: HttpRequest, number: str) -> HttpResponse:
    user = signed_in(request)
    try:
        complaint = complaint_for(actor_from_request(request), number)
    except NotFound as exc:
        raise Http404 from exc
    view = complaint_view(user, complaint)
    return render_page(
        request,
        "console/complaints/detail.html",
        {"complaint": complaint, "view": view, "actions": set(view.actions)},
    )


@console_login_required
@require_POST
def complaint_step(request: HttpRequest, number: str, step: str) -> HttpResponse:
    """One button: acknowledge, resolve, reject, escalate, take_over, close or reopen."""
    actor = actor_from_request(request)
    note = request.POST.get("note", "")
    try:
        if step == "acknowledge":
            complaint_acknowledge(actor=actor, number=number, note=note)
            done = _("Acknowledged: the merchant sees that you are on it.")
        elif step == "resolve":
            complaint_resolve(actor=actor, number=number, resolution=request.POST.get("resolution", ""))
            done = _("Answered as resolved.")
        elif step == "reject":
            complaint_reject(actor=actor, number=number, resolution=request.POST.get("resolution", ""))
            done = _("Answered as unfounded.")
        elif step == "escalate":
            complaint_escalate(actor=actor, number=number, note=note)
            done = _("Sent to the provider.")
        elif step == "take_over":
            complaint = complaint_take_over(actor=actor, number=number, note=note)
            done = _("You took over case %(case)s: decide it on its page.") % {
                "case": complaint.case.number if complaint.case else ""
            }
        elif step == "close":
            complaint_close(actor=actor, number=number, note=note)
            done = _("Complaint closed.")
        elif step == "reopen":
            complaint_reopen(actor=actor, number=number, note=note)
            done = _("Complaint reopened.")
        else:
            raise Http404
    except NotFound as exc:
        raise Http404 from exc
    except PermissionDenied as exc:
        return forbidden(request, str(exc.detail))
    except DomainError as exc:
        messages.error(request, str(exc.detail))
    else:
        messages.success(request, done)
    return HttpResponseRedirect(reverse("console:complaint", args=[number]))
