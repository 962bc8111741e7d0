"""The warehouse's page for devices coming back from closure cases (回收, DOMAIN.md workflow 4 step 8):
scan or type an SN to receive it (``closure.services.closure_receive``), then grade it A/B/C — damage
caused by a person is charged per the contract's price list — and refurbish or scrap it
(``closure.services.closure_inspect``). Below: the devices expected back (the earliest deadline first,
overdue in red) and those received but not yet inspected. Admins and the warehouse only.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from posfleet.closure import selectors
from posfleet.closure.services import closure_inspect, closure_receive
from posfleet.console.views.base import console_login_required, render_page
from posfleet.console.views.money.common import forbidden, signed_in
from posfleet.iam.forms import BootstrapMixin
from posfleet.iam.web import actor_from_request
from posfleet.platform.errors import DomainError, NotFound, PermissionDenied

GRADES = (
    ("A", gettext_lazy("A — as new")),
    ("B", gettext_lazy("B — signs of wear")),
    ("C", gettext_lazy("C — damaged")),
)
DISPOSALS = (
    ("refurbish", gettext_lazy("Refurbish: back to stock")),
    ("scrap", gettext_lazy("Scrap")),
)


class ReceiveForm(BootstrapMixin, forms.Form):
    sn = forms.CharField(
        label=gettext_lazy("Serial number (SN)"),
        max_length=32,
        widget=forms.TextInput(
            attrs={
                "autofocus": True,
                "autocomplete": "off",
                "spellcheck": "false",
                "class": "font-monospace",
                "data-testid": "receive-sn",
            }
        ),
        help_text=gettext_lazy("Scan the barcode on the device or type the SN."),
    )
    note = forms.CharField(
        label=gettext_lazy("Note (optional)"),
        required=False,
        max_length=500,
        widget=forms.TextInput(attrs={"data-testid": "receive-note"}),
    )

    def clean_sn(self) -> str:
        return self.cleaned_data["sn"].strip().upper()


class InspectForm(BootstrapMixin, forms.Form):
    grade = forms.ChoiceField(label=gettext_lazy("Condition grade"), choices=GRADES, widget=forms.RadioSelect)
    human_damage = forms.BooleanField(
        label=gettext_lazy("The damage was caused by a person (charged per the price list)"),
        required=False,
        widget=forms.CheckboxInput(attrs={"data-testid": "inspect-human-damage"}),
    )
    note = forms.CharField(
        label=gettext_lazy("Inspection notes"),
        required=False,
        max_length=500,
        help_text=gettext_lazy("Describe any damage; required for grade C."),
        widget=forms.Textarea(attrs={"rows": 2, "data-testid": "inspect-note"}),
    )
    disposal = forms.ChoiceField(label=gettext_lazy("Then"), choices=DISPOSALS, widget=forms.RadioSelect)


def _warehouse(request: HttpRequest) -> HttpResponse | None:
    if not signed_in(request).has_perm("closure.handle_return"):
        return forbidden(request, _("Returned devices are received and inspected by the warehouse."))
    return None


def _list_context(request: HttpRequest, form: ReceiveForm) -> dict[str, Any]:
    expected, to_inspect = selectors.returns_expected(signed_in(request))
    return {"form": form, "expected": expected, "to_inspect": to_inspect}


@console_login_required
@never_cache
@require_http_methods(["GET", "POST"])
def closure_returns(request: HttpRequest) -> HttpResponse:
    refused = _warehouse(request)
    if refused is not None:
        return refused
    form = ReceiveForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        sn = form.cleaned_data["sn"]
        try:
            entry = closure_receive(actor=actor_from_request(request), sn=sn, note=form.cleaned_data["note"])
        except PermissionDenied as exc:
            return forbidden(request, str(exc.detail))
        except DomainError as exc:  # not expected (404 here is an answer, not a page), received already…
            form.add_error("sn", str(exc.detail))
        else:
            messages.success(
                request,
                _("%(sn)s is received for case %(case)s. Grade it now.")
                % {"sn": entry.terminal.sn, "case": entry.case.number},
            )
            return HttpResponseRedirect(reverse("console:closure_inspect", args=[entry.terminal.sn]))
    return render_page(request, "console/closures/returns.html", _list_context(request, form))


@console_login_required
@never_cache
@require_http_methods(["GET", "POST"])
def closure_inspect_view(request: HttpRequest, sn: str) -> HttpResponse:
    refused = _warehouse(request)
    if refused is not None:
        return refused
    entry = selectors.return_entry_for(signed_in(request), sn)
    if entry is None:
        raise Http404
    form = InspectForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            done = closure_inspect(
                actor=actor_from_request(request),
                sn=entry.sn,
                grade=data["grade"],
                human_damage=bool(data.get("human_damage")),
                note=data.get("note", ""),
                disposal=data["disposal"],
            )
        except NotFound as exc:
            raise Http404 from exc
        except PermissionDenied as exc:
            return forbidden(request, str(exc.detail))
        except DomainError as exc:
            field = exc.params.get("field")
            form.add_error(field if field in form.fields else None, str(exc.detail))
        else:
            messages.success(
                request,
                _("%(sn)s is graded %(grade)s for case %(case)s.")
                % {"sn": done.terminal.sn, "grade": done.grade, "case": done.case.number},
            )
            return HttpResponseRedirect(reverse("console:closure_returns"))
    return render_page(request, "console/closures/inspect.html", {"entry": entry, "form": form})
