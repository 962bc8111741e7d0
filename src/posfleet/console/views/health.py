"""Device health in the console: the silent terminals (active, no heartbeat for 24 hours or never one)
and the relocation alerts (移机告警) with their review.

Both lists are scoped like the terminal list (others' terminals and alerts are not there); the review
buttons call one service each (``fleet.services.relocation_alert_confirm_moved`` / ``_dismiss``,
through ``relocation_alert_review``); a refusal shows its message and changes nothing. Connectivity
(online, offline, silent) is the fleet's one definition (``fleet.selectors``).
"""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from posfleet.console.views.base import console_login_required, render_page
from posfleet.console.views.money.common import forbidden, signed_in
from posfleet.fleet import health
from posfleet.fleet import relocation_alerts as relocations
from posfleet.fleet import selectors as fleet
from posfleet.fleet.relocation_states import COMMAND_LABELS, RelocationCommand, RelocationStatus
from posfleet.fleet.services import relocation_alert_review
from posfleet.iam.forms import BootstrapMixin
from posfleet.iam.models import Role, User
from posfleet.iam.web import actor_from_request
from posfleet.parties import selectors as parties
from posfleet.platform.clock import now
from posfleet.platform.errors import DomainError, NotFound, PermissionDenied

PAGE = 50


class HealthFilterForm(BootstrapMixin, forms.Form):
    """The silent list's filters; every field optional, an invalid value ignored."""

    q = forms.CharField(
        label=gettext_lazy("Search"),
        required=False,
        max_length=32,
        widget=forms.TextInput(
            attrs={
                "placeholder": gettext_lazy("Part of an SN or TID"),
                "type": "search",
                "autocomplete": "off",
            }
        ),
    )
    seen = forms.ChoiceField(
        label=gettext_lazy("Last seen"),
        required=False,
        choices=[
            ("", gettext_lazy("Silent for 24 hours or more, or never")),
            ("stale", gettext_lazy("Silent for 24 hours or more")),
            ("never", gettext_lazy("Never sent a heartbeat")),
        ],
    )
    model = forms.ChoiceField(label=gettext_lazy("Model"), required=False)
    agent = forms.ChoiceField(label=gettext_lazy("Agent"), required=False)
    merchant = forms.CharField(
        label=gettext_lazy("Merchant MID"),
        required=False,
        max_length=15,
        widget=forms.TextInput(attrs={"placeholder": gettext_lazy("MID"), "autocomplete": "off"}),
    )

    def __init__(self, data: QueryDict, *, user: User) -> None:
        super().__init__(data)
        models = [(m.code, f"{m.maker} {m.name}") for m in fleet.terminal_models()]
        cast(forms.ChoiceField, self.fields["model"]).choices = [("", _("All models")), *models]
        if user.role == Role.MERCHANT:
            del self.fields["agent"]
            del self.fields["merchant"]
        else:
            agents = [(a.code, f"{a.code} · {a.name}") for a in parties.agents_visible_to(user)]
            cast(forms.ChoiceField, self.fields["agent"]).choices = [("", _("All agents")), *agents]

    def value(self, name: str) -> Any:
        if not hasattr(self, "cleaned_data"):
            self.is_valid()
        return self.cleaned_data.get(name) or ""

    def filters(self) -> fleet.TerminalFilters:
        return fleet.TerminalFilters(
            model=self.value("model"),
            agent=self.value("agent"),
            merchant=self.value("merchant").strip().upper(),
            q=self.value("q"),
        )

    def active_count(self) -> int:
        return sum(1 for name in ("q", "seen", "model", "agent", "merchant") if self.value(name))


@console_login_required
@require_GET
def silent_list(request: HttpRequest) -> HttpResponse:
    """``/console/health/silent/``: the active terminals of the user's scope not heard of for
    ``SILENT_AFTER`` (24 hours) or never, never heard of first, then the longest silent."""
    user = signed_in(request)
    form = HealthFilterForm(request.GET, user=user)
    at = now()
    terminals = health.silent_terminals(user, form.filters(), at)
    seen = form.value("seen")
    if seen == "never":
        terminals = terminals.filter(last_heartbeat_at__isnull=True)
    elif seen == "stale":
        terminals = terminals.filter(last_heartbeat_at__isnull=False)
    page = Paginator(terminals, PAGE).get_page(request.GET.get("page"))
    return render_page(
        request,
        "console/health/silent.html",
        {
            "form": form,
            "page": page,
            "rows": list(page.object_list),
            "active_filters": form.active_count(),
            "silent_hours": int(health.SILENT_AFTER.total_seconds() // 3600),
            "online_minutes": int(health.ONLINE_WITHIN.total_seconds() // 60),
        },
    )


def _tabs() -> list[tuple[str, str]]:
    return [
        ("open", str(RelocationStatus.OPEN.label)),
        ("confirmed_moved", str(RelocationStatus.CONFIRMED_MOVED.label)),
        ("dismissed", str(RelocationStatus.DISMISSED.label)),
        ("all", _("All")),
    ]


def review_actions() -> list[tuple[str, str]]:
    """The review buttons, in order: (command, label)."""
    return [(command.value, str(COMMAND_LABELS[command])) for command in RelocationCommand]


@console_login_required
@require_GET
def relocation_list(request: HttpRequest) -> HttpResponse:
    """``/console/health/relocations/``: the relocation alerts of the user's scope, open first."""
    user = signed_in(request)
    tab = request.GET.get("tab", "open")
    if tab not in relocations.RELOCATION_TABS:
        tab = "all"
    q = request.GET.get("q", "")[:32]
    alerts = relocations.search_relocation_alerts(user, tab, q)
    page = Paginator(alerts, PAGE).get_page(request.GET.get("page"))
    rows = [
        {
            "alert": alert,
            "may_review": alert.status == RelocationStatus.OPEN
            and user.has_perm("fleet.review_relocation_alert", alert.terminal),
        }
        for alert in page.object_list
    ]
    return render_page(
        request,
        "console/health/relocations.html",
        {
            "page": page,
            "rows": rows,
            "tab": tab,
            "tabs": _tabs(),
            "q": q,
            "review_actions": review_actions(),
        },
    )


@console_login_required
@require_POST
def relocation_review(request: HttpRequest, pk: int) -> HttpResponse:
    """One review button (``action``: confirm_moved or dismiss, with ``note``); back to the terminal's
    page when it was pressed there (``back=terminal``), else to the list."""
    actor = actor_from_request(request)
    action = request.POST.get("action", "")
    try:
        reviewed = relocation_alert_review(
            actor=actor, alert_id=pk, action=action, note=request.POST.get("note", "")
        )
    except NotFound as exc:
        raise Http404 from exc  # others' alerts are simply not there
    except PermissionDenied:
        return forbidden(request, _("Relocation alerts are reviewed by the provider's admins."))
    except DomainError as exc:
        try:
            sn = relocations.relocation_alert_for(signed_in(request), pk).terminal.sn
        except NotFound as missing:  # an unknown action is refused before the alert is looked up
            raise Http404 from missing
        messages.error(request, str(exc.detail))
    else:
        done = (
            _("Relocation of %(sn)s confirmed.")
            if reviewed.status == RelocationStatus.CONFIRMED_MOVED
            else _("Relocation alert of %(sn)s dismissed.")
        )
        sn = reviewed.terminal.sn
        messages.success(request, done % {"sn": sn})
    if request.POST.get("back") == "terminal":
        return HttpResponseRedirect(reverse("console:terminal", args=[sn]))
    return HttpResponseRedirect(reverse("console:relocations"))
