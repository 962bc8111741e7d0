"""The reports on offer: for each, its words, its columns and its chart, around the one selector that
computes its rows (``selectors.py``). The console's chart and table, the CSV and Excel files and the
API's ``rows`` are all read from ``Report.columns`` over the same rows, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from posfleet.audit.vocabulary import EventType
from posfleet.fleet.states import Status
from posfleet.iam.models import User
from posfleet.platform.dates import day_text, moment_text
from posfleet.platform.errors import NotFound
from posfleet.platform.money import format_fen
from posfleet.reports import history, selectors
from posfleet.reports.scope import ReportParams, Viewer


class Kind(StrEnum):
    """What a column holds, and so how a table shows it and a file types it."""

    TEXT = "text"
    MONTH = "month"  # 2026-11
    COUNT = "count"  # a whole number
    FEN = "fen"  # an amount in fen; shown as ¥1,234.56
    YUAN = "yuan"  # the same amount in yuan, exact (Decimal), for files and the API
    PERCENT = "percent"  # Decimal, two places
    DAYS = "days"  # Decimal, one place
    DATETIME = "datetime"


@dataclass(frozen=True)
class Column:
    key: str  # the row's attribute; the file's header; the API's field
    label: str | Promise
    kind: Kind = Kind.TEXT
    shown: bool = True  # in the console's table (codes beside their labels, and yuan, are not)


Chart = dict[str, Any]


@dataclass(frozen=True)
class Report:
    name: str
    title: str | Promise
    summary: str | Promise
    icon: str  # a bootstrap-icons name
    columns: tuple[Column, ...]
    compute: Callable[[User, ReportParams], Sequence[Any]]
    chart: Callable[[Sequence[Any]], Chart]
    period: str  # "months" (back), "ahead" (months ahead) or "days"

    @property
    def shown(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.shown)

    def values(self, row: Any) -> tuple[Any, ...]:
        return tuple(getattr(row, c.key) for c in self.columns)


@dataclass(frozen=True)
class ReportResult:
    """A report as one reader asked for it: its rows, whose they are and over which period."""

    report: Report
    params: ReportParams
    viewer: Viewer
    rows: Sequence[Any]

    def chart(self) -> Chart:
        return self.report.chart(self.rows)

    def table(self) -> list[list[tuple[str, str, str]]]:
        """Each row's shown cells as (key, text, raw value): the console's table."""
        return [
            [
                (c.key, display(c.kind, getattr(row, c.key)), raw(getattr(row, c.key)))
                for c in self.report.shown
            ]
            for row in self.rows
        ]

    def api_rows(self) -> list[dict[str, str | int | None]]:
        return [{c.key: api_value(getattr(row, c.key)) for c in self.report.columns} for row in self.rows]


def run(report: Report, viewer: Viewer, params: ReportParams) -> ReportResult:
    return ReportResult(report, params, viewer, report.compute(viewer.user, params))


# -- how a value is shown, written and answered ------------------------------------------------------


def raw(value: Any) -> str:
    """The value as files and the API write it (``""`` for none)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return timezone.localtime(value).replace(microsecond=0).isoformat()
    return str(value)


def api_value(value: Any) -> str | int | None:
    """JSON-native: integers stay numbers, decimals are strings (never binary floats), times ISO 8601."""
    if value is None or isinstance(value, int | str):
        return value
    return raw(value)


def display(kind: Kind, value: Any) -> str:
    """The value as the console's table shows it, in the active language."""
    if value is None:
        return _("never") if kind == Kind.DATETIME else "—"
    if kind == Kind.COUNT:
        return f"{value:,}"
    if kind == Kind.FEN:
        return format_fen(value)
    if kind == Kind.YUAN:
        return f"{value:,}"
    if kind == Kind.PERCENT:
        return f"{value}%"
    if kind == Kind.DATETIME or isinstance(value, datetime):
        return moment_text(value)
    if isinstance(value, date):
        return day_text(value)
    return str(value)


# -- the charts --------------------------------------------------------------------------------------


def _months(rows: Sequence[Any]) -> list[str]:
    return sorted({r.month for r in rows})


def _sum_by(rows: Sequence[Any], months: list[str], key: str, value: str) -> dict[str, list[Any]]:
    """For each distinct ``key`` of the rows (in their order), the sum of ``value`` in each month."""
    series: dict[str, list[Any]] = {}
    for r in rows:
        series.setdefault(getattr(r, key), [0] * len(months))
        series[getattr(r, key)][months.index(r.month)] += getattr(r, value)
    return series


def _chart(kind: str, unit: str, labels: list[str], datasets: list[dict[str, Any]], **extra: Any) -> Chart:
    return {"kind": kind, "unit": unit, "labels": labels, "datasets": datasets, **extra}


def _data(values: list[Any]) -> list[Any]:
    """Chart values: integers as they are, decimals as their exact text (Chart.js reads both)."""
    return [str(v) if isinstance(v, Decimal) else v for v in values]


def fleet_chart(rows: Sequence[Any]) -> Chart:
    months = _months(rows)
    series = _sum_by(rows, months, "status", "terminals")
    order = [s.value for s in Status if s.value in series]
    datasets = [
        {"label": str(Status(code).label), "data": series[code], "colour": f"--pf-status-{code}"}
        for code in order
    ]
    return _chart("bar", "count", months, datasets, stacked=True)


# Each change in the colour of the status it leads to (the badges' and the timeline's).
ACTIVITY_COLOURS = {
    EventType.TERMINAL_ACTIVATED: "--pf-status-active",
    EventType.TERMINAL_DEACTIVATED: "--pf-status-deactivated",
    EventType.TERMINAL_DEREGISTERED: "--pf-status-deregistered",
    EventType.CLOSURE_REQUESTED: "--pf-status-blocked",
}


def activity_chart(rows: Sequence[Any]) -> Chart:
    months = _months(rows)
    series = _sum_by(rows, months, "event", "terminals")
    datasets = [
        {"label": str(EventType(event).label), "data": series[event], "colour": ACTIVITY_COLOURS[event]}
        for event in (*history.ACTIVITY_EVENTS, history.CLOSURE_REQUESTED)
        if event in series
    ]
    return _chart("bar", "count", months, datasets)


def dormant_chart(rows: Sequence[Any]) -> Chart:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.model_name] = counts.get(r.model_name, 0) + 1
    labels = sorted(counts)
    return _chart(
        "bar", "count", labels, [{"label": _("Dormant terminals"), "data": [counts[m] for m in labels]}]
    )


def expiry_chart(rows: Sequence[Any]) -> Chart:
    return _chart(
        "bar",
        "count",
        [r.month for r in rows],
        [{"label": _("Terminals"), "data": [r.terminals for r in rows]}],
    )


def volume_chart(rows: Sequence[Any]) -> Chart:
    months = _months(rows)
    series = _sum_by(rows, months, "method", "amount_fen")
    labels = {r.method: r.method_label for r in rows}
    datasets = [{"label": labels[m], "data": data} for m, data in series.items()]
    return _chart("bar", "fen", months, datasets, stacked=True)


def declines_chart(rows: Sequence[Any]) -> Chart:
    return _chart(
        "bar",
        "percent",
        [r.model_name for r in rows],
        [{"label": _("Decline rate"), "data": _data([r.decline_rate_percent for r in rows])}],
    )


def sla_chart(rows: Sequence[Any]) -> Chart:
    months = _months(rows)
    datasets = []
    for process, label in (
        (selectors.CLOSURE_REVIEW, _("closure review")),
        (selectors.APPLICATION_REVIEW, _("application review")),
    ):
        found = {r.month: r.compliance_percent for r in rows if r.process == process}
        if found:
            datasets.append({"label": label, "data": _data([found.get(m) for m in months])})
    return _chart("bar", "percent", months, datasets)


def refunds_chart(rows: Sequence[Any]) -> Chart:
    months = [r.month for r in rows]
    return _chart(
        "bar",
        "days",
        months,
        [
            {"label": _("Average days"), "data": _data([r.average_days for r in rows])},
            {"label": _("Longest days"), "data": _data([r.longest_days for r in rows]), "type": "line"},
        ],
    )


# -- the catalogue -----------------------------------------------------------------------------------

MONTH = Column("month", gettext_lazy("Month"), Kind.MONTH)
K = Kind

REPORTS: dict[str, Report] = {
    r.name: r
    for r in (
        Report(
            "fleet",
            gettext_lazy("Fleet by status and model"),
            gettext_lazy("How many terminals of each model were in each status at the end of each month."),
            "hdd-stack",
            (
                MONTH,
                Column("model", gettext_lazy("Model code"), shown=False),
                Column("model_name", gettext_lazy("Model")),
                Column("status", gettext_lazy("Status code"), shown=False),
                Column("status_label", gettext_lazy("Status")),
                Column("terminals", gettext_lazy("Terminals"), K.COUNT),
            ),
            lambda user, p: history.fleet_by_month(user, p.months),
            fleet_chart,
            "months",
        ),
        Report(
            "activity",
            gettext_lazy("Activations and closures"),
            gettext_lazy(
                "Terminals activated, deactivated and deregistered, and closures asked for, per month, "
                "with their reasons."
            ),
            "activity",
            (
                MONTH,
                Column("event", gettext_lazy("Event code"), shown=False),
                Column("event_label", gettext_lazy("Event")),
                Column("reason", gettext_lazy("Reason code"), shown=False),
                Column("reason_label", gettext_lazy("Reason")),
                Column("terminals", gettext_lazy("Terminals"), K.COUNT),
            ),
            lambda user, p: history.activity_by_month(user, p.months),
            activity_chart,
            "months",
        ),
        Report(
            "dormant",
            gettext_lazy("Dormant terminals"),
            gettext_lazy("Active terminals without an approved sale in the last days chosen."),
            "moon",
            (
                Column("sn", gettext_lazy("SN")),
                Column("model", gettext_lazy("Model code"), shown=False),
                Column("model_name", gettext_lazy("Model")),
                Column("merchant", gettext_lazy("MID")),
                Column("merchant_name", gettext_lazy("Merchant")),
                Column("agent", gettext_lazy("Agent")),
                Column("active_since", gettext_lazy("Active since"), K.DATETIME),
                Column("last_sale_at", gettext_lazy("Last sale"), K.DATETIME),
                Column("days_without_sale", gettext_lazy("Days without a sale"), K.COUNT),
            ),
            lambda user, p: selectors.dormant_terminals(user, p.days),
            dormant_chart,
            "days",
        ),
        Report(
            "expiry",
            gettext_lazy("Expiry forecast"),
            gettext_lazy("Terminals in service whose service term ends in each month ahead."),
            "calendar-event",
            (MONTH, Column("terminals", gettext_lazy("Terminals"), K.COUNT)),
            lambda user, p: selectors.expiry_forecast(user, p.months),
            expiry_chart,
            "ahead",
        ),
        Report(
            "transactions",
            gettext_lazy("Transaction volume by payment method"),
            gettext_lazy(
                "Approved sales per month and payment method: how many, how much, and each method's share."
            ),
            "receipt",
            (
                MONTH,
                Column("method", gettext_lazy("Method code"), shown=False),
                Column("method_label", gettext_lazy("Payment method")),
                Column("sales", gettext_lazy("Number of sales"), K.COUNT),
                Column("amount_fen", gettext_lazy("Amount"), K.FEN),
                Column("amount_yuan", gettext_lazy("Amount (yuan)"), K.YUAN, shown=False),
                Column("share_percent", gettext_lazy("Share of the month"), K.PERCENT),
            ),
            lambda user, p: selectors.transaction_volume(user, p.months),
            volume_chart,
            "months",
        ),
        Report(
            "declines",
            gettext_lazy("Decline rate by terminal model"),
            gettext_lazy("Sales asked for on each model and the share the issuer or the gateway declined."),
            "x-circle",
            (
                Column("model", gettext_lazy("Model code"), shown=False),
                Column("model_name", gettext_lazy("Model")),
                Column("sales", gettext_lazy("Sales attempted"), K.COUNT),
                Column("declined", gettext_lazy("Declined"), K.COUNT),
                Column("decline_rate_percent", gettext_lazy("Decline rate"), K.PERCENT),
            ),
            lambda user, p: selectors.decline_rates(user, p.months),
            declines_chart,
            "months",
        ),
        Report(
            "sla",
            gettext_lazy("Review SLA compliance"),
            gettext_lazy(
                "Closure cases and applications decided within their review clock, by month of request."
            ),
            "stopwatch",
            (
                MONTH,
                Column("process", gettext_lazy("Process code"), shown=False),
                Column("process_label", gettext_lazy("Process")),
                Column("on_time", gettext_lazy("On time"), K.COUNT),
                Column("late", gettext_lazy("Late"), K.COUNT),
                Column("waiting", gettext_lazy("Waiting, within the clock"), K.COUNT),
                Column("compliance_percent", gettext_lazy("Compliance"), K.PERCENT),
            ),
            lambda user, p: selectors.sla_compliance(user, p.months),
            sla_chart,
            "months",
        ),
        Report(
            "refunds",
            gettext_lazy("Deposit refund times"),
            gettext_lazy(
                "Deposits released by closure cases, per month, and how long they took from the request."
            ),
            "cash-coin",
            (
                MONTH,
                Column("deposits", gettext_lazy("Deposits released"), K.COUNT),
                Column("refunded_fen", gettext_lazy("Refunded"), K.FEN),
                Column("refunded_yuan", gettext_lazy("Refunded (yuan)"), K.YUAN, shown=False),
                Column("average_days", gettext_lazy("Average days"), K.DAYS),
                Column("longest_days", gettext_lazy("Longest days"), K.DAYS),
            ),
            lambda user, p: selectors.deposit_refund_times(user, p.months),
            refunds_chart,
            "months",
        ),
    )
}
NAMES = tuple(REPORTS)


def report_named(name: str) -> Report:
    report = REPORTS.get(name)
    if report is None:
        raise NotFound()
    return report
