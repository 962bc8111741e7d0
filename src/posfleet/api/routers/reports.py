"""/reports: the console's reports as data — the same rows as its chart, table and files (ADR 0028), in
the caller's scope (the provider's staff: the whole fleet or one agent's; an agent: its subtree).
Merchants are refused (403)."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from posfleet.api import schemas as s
from posfleet.api.auth import actor
from posfleet.iam.models import User
from posfleet.platform.errors import PermissionDenied
from posfleet.reports.catalogue import REPORTS, report_named, run
from posfleet.reports.scope import (
    DAYS_DEFAULT,
    DAYS_MAX,
    MONTHS_DEFAULT,
    MONTHS_MAX,
    may_read_reports,
    params_from,
    report_viewer,
)

router = Router(tags=["reports"])


class ReportQuery(Schema):
    months: int = Field(
        MONTHS_DEFAULT,
        ge=1,
        le=MONTHS_MAX,
        description="Calendar months back, this one included (ahead: expiry)",
    )
    days: int = Field(
        DAYS_DEFAULT, ge=1, le=DAYS_MAX, description="dormant: no approved sale for this many days"
    )
    agent: str = Field("", max_length=16, description="An agent's code: its subtree only")


class ColumnOut(Schema):
    key: str
    label: str
    kind: str = Field(description="text, month, count, fen, yuan (decimal string), percent, days, datetime")


class ReportSummary(Schema):
    name: str
    title: str
    summary: str


class ReportOut(ReportSummary):
    months: int
    days: int
    agent: str | None = Field(description="The agent narrowed to, if any")
    columns: list[ColumnOut]
    rows: list[dict[str, str | int | None]] = Field(
        description="One object per row, keyed by the columns' keys: counts and fen are integers, "
        "yuan, percentages and days decimal strings, times ISO 8601, none null"
    )


def _reader(request: HttpRequest) -> User:
    user = actor(request).scope_user
    if user is None or not may_read_reports(user):
        raise PermissionDenied()
    return user


@router.get(
    "/reports",
    summary="List reports",
    response=s.responses({200: list[ReportSummary]}, (401, 403, 422)),
)
def reports_list(request: HttpRequest) -> list[ReportSummary]:
    """The reports on offer, each read at ``/reports/{name}``."""
    _reader(request)
    return [ReportSummary(name=r.name, title=str(r.title), summary=str(r.summary)) for r in REPORTS.values()]


@router.get(
    "/reports/{name}",
    summary="Get a report",
    response=s.responses({200: ReportOut}, (401, 403, 404, 422)),
)
def report_detail(request: HttpRequest, name: str, query: Query[ReportQuery]) -> ReportOut:
    """A report's rows, by ``name``: fleet, activity, dormant, expiry, transactions, declines, sla,
    refunds (as ``/reports`` lists them)."""
    user = _reader(request)
    report = report_named(name)
    params = params_from({"months": query.months, "days": query.days, "agent": query.agent})
    result = run(report, report_viewer(user, params.agent), params)
    return ReportOut(
        name=report.name,
        title=str(report.title),
        summary=str(report.summary),
        months=params.months,
        days=params.days,
        agent=result.viewer.agent.code if result.viewer.agent is not None else None,
        columns=[ColumnOut(key=c.key, label=str(c.label), kind=c.kind.value) for c in report.columns],
        rows=result.api_rows(),
    )
