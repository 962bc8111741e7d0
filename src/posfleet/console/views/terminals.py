"""Device management: the searchable terminal list with its selection (kept across searches and
pages: ticked, pasted as SNs or every match of a filter; ADR 0029), and the terminal page with the pages
it leads to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.urls import reverse
from django.utils.functional import Promise
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_POST

from posfleet.billing import selectors as money
from posfleet.billing.models import Deposit, ServiceContract, Transaction
from posfleet.closure import selectors as closures
from posfleet.closure.models import CaseTerminal
from posfleet.console import selection
from posfleet.console.commands import commands_for_role
from posfleet.console.forms import PAGE_SIZE, PasteForm, TerminalFilterForm, offers_party_filters
from posfleet.console.presentation import CommandView, command_views
from posfleet.console.queries import device_list
from posfleet.console.views.base import console_login_required, is_htmx, render_page
from posfleet.console.views.closure_request import REQUESTER_ROLES, may_close, may_close_in_list
from posfleet.console.views.health import review_actions
from posfleet.console.views.money.common import may_list_settlements
from posfleet.enrollment.services.replacement import may_replace
from posfleet.fleet import health
from posfleet.fleet import selectors as fleet
from posfleet.fleet.guards import reactivation_deadline
from posfleet.fleet.models import Capability, Terminal
from posfleet.fleet.states import Status
from posfleet.fleet.timeline import terminal_timeline
from posfleet.iam.models import User
from posfleet.iam.selectors import provider
from posfleet.parties import selectors as parties
from posfleet.platform.clock import now
from posfleet.platform.errors import NotFound

LIST_TEMPLATE = "console/terminals/list.html"
# The bulk "Close terminals" button hands the selection's SNs to the closure's first screen (one
# merchant's terminals at a time): up to this many.
CLOSE_MAX = 100
UNKNOWN_SHOWN = 200  # unknown pasted SNs listed one by one; all of them stay in the box to copy

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
    selected: bool = False  # in the person's selection


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


def _toolbar(
    user: User, *, outcome: selection.Outcome | None = None, paste: PasteForm | None = None
) -> dict[str, Any]:
    """The bulk toolbar: how many terminals are selected, the paste box and what the last change did."""
    selected = selection.count(user)
    close_sns = selection.selected_sns(user) if 0 < selected <= CLOSE_MAX else []
    unknown = outcome.unknown if outcome is not None else []
    return {
        "selected_count": selected,
        "selection_max": selection.SELECTION_MAX,
        "close_sns": close_sns,
        "close_max": CLOSE_MAX,
        "bulk_commands": command_views(commands_for_role(user)),
        "may_close_several": user.role in REQUESTER_ROLES,
        "paste_form": paste or PasteForm(),
        "outcome": outcome,
        "unknown": unknown,
        "unknown_shown": unknown[:UNKNOWN_SHOWN],
        "unknown_text": "\n".join(unknown),
    }


def _list_context(request: HttpRequest, user: User, data: QueryDict) -> dict[str, Any]:
    form = TerminalFilterForm(data, user=user)
    terminals = device_list(user, form.list_filters(), form.sort_key())
    if form.filter_error:
        terminals = terminals.none()
    # Whether each row is in the selection comes with the page's own query.
    page = Paginator(terminals.annotate(in_selection=selection.selected_q(user)), PAGE_SIZE).get_page(
        form.page_number()
    )
    rows = [
        Row(
            t,
            command_views(fleet.allowed_commands(user, t)),
            may_close_in_list(user, t),
            bool(getattr(t, "in_selection", False)),
        )
        for t in page.object_list
    ]
    query = form.canonical()
    params = query.copy()
    params.pop("page", None)
    return {
        "form": form,
        "page": page,
        "rows": rows,
        "params": params,
        "canonical": request.path + (f"?{query.urlencode()}" if query else ""),
        "sort": form.sort_key(),
        "columns": _columns(form.sort_key()),
        "active_filters": form.active_count(),
        "status_choices": Status.choices,
        "selected_statuses": set(form.value("status")),
        "may_import": user.has_perm("fleet.import_terminals"),
        # The export job runs the fleet's filters only: the dormant rule and the selection are not its.
        "may_export": not (form.dormant_window() or form.value("selected")),
        "page_range": page.paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1),
        **_toolbar(user),
    }


@console_login_required
@require_GET
def terminal_list(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    context = _list_context(request, user, request.GET)
    response = render_page(request, LIST_TEMPLATE, context, partial="table")
    if is_htmx(request):
        # The address bar shows the clean query (no empty fields); a refresh does not add history.
        current = request.htmx.current_url_abs_path  # type: ignore[attr-defined]
        response["HX-Push-Url"] = context["canonical"] if context["canonical"] != current else "false"
    return response


SELECTION_OPS = ("add", "remove", "paste", "add_matches", "clear")


@console_login_required
@require_POST
def terminal_selection(request: HttpRequest) -> HttpResponse:
    """Change the selection: ``add``/``remove`` the SNs in ``sns`` (ticks on a page), ``paste`` a list of
    SNs (unknown ones are reported back), ``add_matches`` of the filter posted with it, ``clear``.

    htmx gets the toolbar back (and ``selection-changed`` when rows' ticks must follow); without
    JavaScript the list page is shown again with the toolbar saying what happened."""
    user = request.user
    assert isinstance(user, User)
    op = request.POST.get("op", "")
    if op not in SELECTION_OPS:
        raise Http404
    outcome: selection.Outcome | None = None
    paste: PasteForm | None = None
    if op in {"add", "remove"}:
        ids = selection.visible_ids(user, selection.parse_pasted(request.POST.get("sns", "")))
        outcome = selection.add(user, ids) if op == "add" else selection.remove(user, ids)
        if not outcome.refused:
            outcome = None  # a tick says nothing: the count is enough
    elif op == "paste":
        paste = PasteForm(request.POST)
        if paste.is_valid():
            sns = selection.parse_pasted(paste.cleaned_data["sns"])
            outcome = selection.add_sns(user, sns)
            paste = None
    elif op == "add_matches":
        form = TerminalFilterForm(request.POST, user=user)
        if form.filter_error:
            outcome = selection.Outcome(refused=form.filter_error)
        else:
            outcome = selection.add_matching(user, device_list(user, form.list_filters()))
    else:
        selection.clear(user)
    if is_htmx(request):
        context = _toolbar(user, outcome=outcome, paste=paste)
        response = render_page(request, LIST_TEMPLATE, context, partial="toolbar")
        if op not in {"add", "remove"} or outcome is not None:
            response["HX-Trigger"] = "selection-changed"  # the rows' ticks follow
        return response
    context = _list_context(request, user, QueryDict(request.POST.get("query", "")[:2000]))
    context.update(_toolbar(user, outcome=outcome, paste=paste))
    return render_page(request, LIST_TEMPLATE, context)


# -- the terminal page: where it leads, its last sale and heartbeat, its reactivation deadline ---------


@dataclass(frozen=True)
class PageLink:
    """A page the terminal page leads to, offered only when the viewer may open it."""

    key: str  # data-testid="link-<key>"
    label: str | Promise
    url: str
    text: str = ""  # what it names: a merchant, a store, a contract number


@dataclass(frozen=True)
class TerminalOverview:
    links: list[PageLink]
    last_transaction: Transaction | None
    contract: ServiceContract | None
    deposit: Deposit | None
    closure: CaseTerminal | None  # the case it is in (``open``) or was last in, if the viewer may see it
    reactivation_deadline: datetime | None  # deactivated terminals only (fleet.guards: the one rule)
    reactivation_open: bool

    def link(self, key: str) -> PageLink | None:
        return next((link for link in self.links if link.key == key), None)


def _list_url(**params: str) -> str:
    return f"{reverse('console:terminals')}?{urlencode(params)}"


def terminal_overview(user: User, terminal: Terminal) -> TerminalOverview:
    """What the terminal page shows beside the terminal, for ``user`` (who may see it): a few bounded
    queries whatever the terminal's history (its merchant in scope, its contract with the deposit, its
    last transaction, its closure case), each link asked of the rule its target page asks."""
    links: list[PageLink] = []
    merchant = terminal.merchant
    # The money page, the statements: ``parties.merchant_for(user, mid)``, as those pages look it up.
    merchant_visible = (
        merchant is not None and parties.merchants_visible_to(user).filter(pk=merchant.pk).exists()
    )
    party_filters = offers_party_filters(user)
    if merchant is not None and merchant_visible:
        links.append(
            PageLink(
                "merchant",
                _("Merchant's money"),
                reverse("console:merchant_money", args=[merchant.mid]),
                f"{merchant.name} · {merchant.mid}",
            )
        )
    if terminal.store is not None:
        by_store = {"store": terminal.store.code}
        if merchant is not None and party_filters:
            by_store = {"merchant": merchant.mid, **by_store}
        links.append(
            PageLink(
                "store",
                _("Terminals of the store"),
                _list_url(**by_store),
                f"{terminal.store.name} · {terminal.store.code}",
            )
        )
    if terminal.agent is not None and party_filters:
        links.append(
            PageLink(
                "agent",
                _("Terminals of the agent"),
                _list_url(agent=terminal.agent.code),
                f"{terminal.agent.name} · {terminal.agent.code}",
            )
        )
    contract = money.contract_of_terminal(user, terminal.pk)  # contracts_visible_to: the contract page's
    deposit: Deposit | None = getattr(contract, "deposit", None) if contract is not None else None
    if contract is not None:
        url = reverse("console:contract", args=[contract.pk])
        links.append(PageLink("contract", _("Service contract"), url, contract.get_status_display()))
        if deposit is not None or contract.deposit_fen:
            links.append(PageLink("deposit", _("Deposit"), f"{url}#deposit-title"))
    last = money.last_transaction_on(user, terminal.pk)
    if merchant is not None or last is not None:
        url = f"{reverse('console:transactions')}?{urlencode({'terminal': terminal.sn})}"
        links.append(PageLink("transactions", _("Transactions"), url))
    if merchant is not None and may_list_settlements(user):
        url = f"{reverse('console:settlements')}?{urlencode({'merchant': merchant.mid})}"
        links.append(PageLink("settlements", _("Settlements"), url))
    if merchant is not None and merchant_visible:
        links.append(
            PageLink("statements", _("Statements"), reverse("console:statements", args=[merchant.mid]))
        )
    entry = closures.closure_entry_of_terminal(terminal.pk)
    if entry is not None and not user.has_perm("closure.view_closure", entry.case.merchant):
        entry = None  # the case page's rule: a refurbished device's earlier merchant's case is not yours
    if entry is not None:
        url = reverse("console:closure", args=[entry.case.number])
        links.append(PageLink("closure", _("Closure case"), url, entry.case.number))
    if terminal.model.kind == fleet.Kind.SMART and user.has_perm("fleet.view_device_commands", terminal):
        url = reverse("console:terminal_commands", args=[terminal.sn])
        links.append(PageLink("commands", _("Device commands"), url))
    deadline = None
    if terminal.status == Status.DEACTIVATED and terminal.deactivated_at is not None:
        deadline = reactivation_deadline(terminal.deactivated_at)
    return TerminalOverview(
        links=links,
        last_transaction=last,
        contract=contract,
        deposit=deposit,
        closure=entry,
        reactivation_deadline=deadline,
        reactivation_open=deadline is not None and now() <= deadline,
    )


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
    overview = terminal_overview(user, terminal)
    context = {
        "terminal": terminal,
        "overview": overview,
        "commands": command_views(fleet.allowed_commands(user, terminal)),
        "capabilities": capabilities,
        "provider": provider(),
        "agents": _agent_chain(user, terminal),
        "timeline": timeline.entries(newest_first=True),
        "may_replace": may_replace(user, terminal),
        "may_close": may_close(user, terminal),
        # The open case (if the viewer may see it) replaces "Close terminal" with a link to it.
        "closure_case": overview.closure.case.number if overview.closure and overview.closure.open else "",
        "replaces": replaces,
        "replaced_by": replaced_by,
        "health": health.terminal_health(terminal, now()),
        "may_review_relocation": user.has_perm("fleet.review_relocation_alert", terminal),
        "review_actions": review_actions(),
    }
    return render_page(request, "console/terminals/detail.html", context, partial="body")
