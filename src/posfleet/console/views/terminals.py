"""Device management: the searchable terminal list and the terminal page."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from posfleet.closure import selectors as closures
from posfleet.console.commands import commands_for_role
from posfleet.console.forms import PAGE_SIZE, TerminalFilterForm
from posfleet.console.presentation import CommandView, command_views
from posfleet.console.views.base import console_login_required, is_htmx, render_page
from posfleet.console.views.closure_request import REQUESTER_ROLES, may_close, may_close_in_list
from posfleet.console.views.health import review_actions
from posfleet.enrollment.services.replacement import may_replace
from posfleet.fleet import selectors as fleet
from posfleet.fleet.models import Capability, Terminal
from posfleet.fleet.states import Status
from posfleet.fleet.timeline import terminal_timeline
from posfleet.iam.models import User
from posfleet.iam.selectors import provider
from posfleet.parties import selectors as parties
from posfleet.platform.clock import now
from posfleet.platform.errors import NotFound

COLUMNS = (
    ("sn", _("SN")),
    ("tid", _("TID")),
    ("status", _("Status")),
    ("model", _("Model")),
    ("agent", _("Agent")),
    ("merchant", _("Merchant")),
    ("sim_expiry", _("SIM expiry")),
    ("changed", _("Changed")),
)


@dataclass(frozen=True)
class Row:
    terminal: Terminal
    commands: list[CommandView]
    may_close: bool = False  # offers "Close terminal" (注销): the closure's screens check it all again


@dataclass(frozen=True)
class Column:
    key: str
    label: object
    direction: str  # "asc" or "desc" when the list is sorted by it, else ""
    next_sort: str


def _columns(sort: str) -> list[Column]:
    current, descending = sort.lstrip("-"), sort.startswith("-")
    columns = []
    for key, label in COLUMNS:
        direction = ("desc" if descending else "asc") if key == current else ""
        next_sort = f"-{key}" if direction == "asc" else key
        columns.append(Column(key, label, direction, next_sort))
    return columns


@console_login_required
@require_GET
def terminal_list(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    form = TerminalFilterForm(request.GET, user=user)
    terminals = fleet.search_terminals(user, form.filters(), form.sort_key())
    if form.range_error:
        terminals = terminals.none()
    page = Paginator(terminals, PAGE_SIZE).get_page(form.page_number())
    rows = [
        Row(t, command_views(fleet.allowed_commands(user, t)), may_close_in_list(user, t))
        for t in page.object_list
    ]
    query = form.canonical()
    canonical = request.path + (f"?{query.urlencode()}" if query else "")
    params = query.copy()
    params.pop("page", None)
    context = {
        "form": form,
        "page": page,
        "rows": rows,
        "params": params,
        "sort": form.sort_key(),
        "columns": _columns(form.sort_key()),
        "active_filters": form.active_count(),
        "status_choices": Status.choices,
        "selected_statuses": set(form.value("status")),
        "bulk_commands": command_views(commands_for_role(user)),
        "may_import": user.has_perm("fleet.import_terminals"),
        "may_close_several": user.role in REQUESTER_ROLES,
        "page_range": page.paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1),
    }
    response = render_page(request, "console/terminals/list.html", context, partial="table")
    if is_htmx(request):
        # The address bar shows the clean query (no empty fields); a refresh does not add history.
        current = request.htmx.current_url_abs_path  # type: ignore[attr-defined]
        response["HX-Push-Url"] = canonical if canonical != current else "false"
    return response


def _agent_chain(user: User, terminal: Terminal) -> list[object]:
    """The terminal's agent after those of its parent agents that ``user`` may see, top first."""
    if terminal.agent is None:
        return []
    ids = [int(p) for p in terminal.agent.organisation.path.strip("/").split("/") if p]
    parents = (
        parties.agents_visible_to(user)
        .filter(organisation_id__in=ids)
        .exclude(pk=terminal.agent.pk)
        .order_by("organisation__path")
    )
    return [*parents, terminal.agent]


@console_login_required
@require_GET
def terminal_detail(request: HttpRequest, sn: str) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    try:
        timeline = terminal_timeline(user, sn)
    except NotFound as exc:
        raise Http404 from exc  # others' terminals are simply not there
    terminal = timeline.terminal
    replaces, replaced_by = fleet.replacement_links(user, terminal)
    capabilities = []
    for value in terminal.model.capabilities or []:
        try:
            capabilities.append(Capability(value).label)
        except ValueError:
            capabilities.append(value)
    context = {
        "terminal": terminal,
        "commands": command_views(fleet.allowed_commands(user, terminal)),
        "capabilities": capabilities,
        "provider": provider(),
        "agents": _agent_chain(user, terminal),
        "timeline": timeline.entries(newest_first=True),
        "may_replace": may_replace(user, terminal),
        "may_close": may_close(user, terminal),
        "closure_case": closures.open_case_numbers([terminal.pk]).get(terminal.pk, ""),
        "replaces": replaces,
        "replaced_by": replaced_by,
        "health": fleet.terminal_health(terminal, now()),
        "may_review_relocation": user.has_perm("fleet.review_relocation_alert", terminal),
        "review_actions": review_actions(),
    }
    return render_page(request, "console/terminals/detail.html", context, partial="body")
