"""An agent's own page: its merchants and terminals, activity and takings, and what is open with it.
The provider's staff open any agent's; an agent its own (and its sub-agents'); anyone else finds no such
page (404)."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET

from posfleet.console.views.base import console_login_required, render_page
from posfleet.console.views.reports import reader
from posfleet.platform.errors import NotFound, PermissionDenied, ValidationFailed
from posfleet.reports.agents import agent_overview, own_agent
from posfleet.reports.scope import MONTH_CHOICES, ReportParams, params_from

AGENT_MONTHS = 6  # the page's period unless asked otherwise


def _terminal_chart(tallies: list[Any]) -> dict[str, Any]:
    return {
        "kind": "doughnut",
        "unit": "count",
        "labels": [t.label for t in tallies],
        "datasets": [
            {
                "label": "",
                "data": [t.count for t in tallies],
                "colours": [f"--pf-status-{t.code}" for t in tallies],
            }
        ],
    }


@console_login_required
@require_GET
def my_agent_page(request: HttpRequest) -> HttpResponse:
    """The signed-in agent's own page."""
    agent = own_agent(reader(request))
    if agent is None:
        raise Http404
    return redirect("console:agent", code=agent.code)


@console_login_required
@require_GET
def agent_page(request: HttpRequest, code: str) -> HttpResponse:
    user = reader(request)
    error = ""
    try:
        params = params_from({"months": request.GET.get("months") or AGENT_MONTHS})
    except ValidationFailed as exc:
        params, error = ReportParams(months=AGENT_MONTHS), str(exc.detail)
    try:
        overview = agent_overview(user, code.strip().upper()[:16], params)
    except (NotFound, PermissionDenied) as exc:
        raise Http404 from exc
    context = {
        "overview": overview,
        "agent": overview.agent,
        "error": error,
        "month_choices": MONTH_CHOICES,
        "charts": {
            "terminals": _terminal_chart(overview.terminals),
            "activity": overview.activity.chart(),
            "volume": overview.volume.chart(),
        },
    }
    return render_page(request, "console/reports/agent.html", context, status=422 if error else 200)
