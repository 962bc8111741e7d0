"""Reports (报表): the index, each report as a chart and a table of the same rows, and its CSV and Excel
files — for the provider's staff (the whole fleet, or one agent's) and agents (their own subtree).
Merchants have no reports: these pages answer them 404 and the menu does not offer them."""

from __future__ import annotations

from typing import Any, cast

from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import reverse
from django.views.decorators.http import require_GET

from posfleet.console.views.base import console_login_required, render_page
from posfleet.console.views.money.common import signed_in
from posfleet.iam.models import User
from posfleet.iam.web import actor_from_request
from posfleet.parties.selectors import agents_visible_to
from posfleet.platform.errors import NotFound, PermissionDenied, ValidationFailed
from posfleet.reports import exports
from posfleet.reports.agents import own_agent
from posfleet.reports.catalogue import REPORTS, Kind, Report, ReportResult, report_named, run
from posfleet.reports.scope import (
    DAYS_CHOICES,
    MONTH_CHOICES,
    ReportParams,
    may_read_reports,
    params_from,
    report_viewer,
)

NUMERIC = frozenset({Kind.COUNT, Kind.FEN, Kind.YUAN, Kind.PERCENT, Kind.DAYS})
AGENTS_LISTED = 200


def reader(request: HttpRequest) -> User:
    """The signed-in reader of reports; anyone else (merchants) finds no such page."""
    user = signed_in(request)
    if not may_read_reports(user):
        raise Http404
    return user


def _report(name: str) -> Report:
    try:
        return report_named(name)
    except NotFound as exc:
        raise Http404 from exc


def _result(user: User, report: Report, params: ReportParams) -> ReportResult:
    try:
        return run(report, report_viewer(user, params.agent), params)
    except (NotFound, PermissionDenied) as exc:
        raise Http404 from exc


def query_of(params: ReportParams, report: Report) -> str:
    """The canonical query of ``params`` for ``report`` (its period and the agent, when narrowed)."""
    parts = [f"days={params.days}" if report.period == "days" else f"months={params.months}"]
    if params.agent:
        parts.append(f"agent={params.agent}")
    return "&".join(parts)


@console_login_required
@require_GET
def report_index(request: HttpRequest) -> HttpResponse:
    user = reader(request)
    agents = agents_visible_to(user).order_by("code")
    context = {
        "reports": list(REPORTS.values()),
        "agents": list(agents[:AGENTS_LISTED]),
        "agents_total": agents.count(),
        "own_agent": own_agent(user),
    }
    return render_page(request, "console/reports/index.html", context)


@console_login_required
@require_GET
def report_page(request: HttpRequest, name: str) -> HttpResponse:
    user = reader(request)
    report = _report(name)
    context: dict[str, Any] = {
        "report": report,
        "month_choices": MONTH_CHOICES,
        "days_choices": DAYS_CHOICES,
        "agents": list(agents_visible_to(user).order_by("code")[:AGENTS_LISTED]),
        "columns": [(c, c.kind in NUMERIC) for c in report.shown],
        "numeric_keys": {c.key for c in report.shown if c.kind in NUMERIC},
    }
    try:
        params = params_from(request.GET)
    except ValidationFailed as exc:
        context.update(params=ReportParams(), error=exc.detail)
        return render_page(request, "console/reports/report.html", context, status=422)
    result = _result(user, report, params)
    query = query_of(params, report)
    context.update(
        params=params,
        result=result,
        table=result.table(),
        charts={"main": result.chart()},
        query=query,
        exports=[
            (fmt, reverse("console:report_export", args=[report.name, fmt]) + f"?{query}")
            for fmt in exports.FORMATS
        ],
    )
    return render_page(request, "console/reports/report.html", context)


@console_login_required
@require_GET
def report_export(request: HttpRequest, name: str, fmt: str) -> HttpResponse:
    """The report's rows as a streamed CSV or Excel file (the page's rows, every column); one audit
    event per export."""
    user = reader(request)
    report = _report(name)
    if fmt not in exports.FORMATS:
        raise Http404
    try:
        params = params_from(request.GET)
    except ValidationFailed as exc:
        return HttpResponse(str(exc.detail), status=422, content_type="text/plain; charset=utf-8")
    result = _result(user, report, params)
    chunks = exports.stream_report(actor=actor_from_request(request), result=result, fmt=fmt)
    response = StreamingHttpResponse(chunks, content_type=exports.content_type(fmt))
    response["Content-Disposition"] = f'attachment; filename="{exports.filename(report, fmt)}"'
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return cast(HttpResponse, response)  # a streaming response; the decorators only pass it on
