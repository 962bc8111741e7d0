"""Reports 1 and 2, over the fleet's history: the fleet by status and model at each month's end, and the
activations, deactivations, deregistrations and closures of each month (docs/adr/0028, 0037).

A month that has ended is read from its stored figures (``reports.models``, written once by
``reports.month_end``) when they are there; the month in progress, and an ended month not yet stored,
are computed live from the history itself — the terminals' status periods and the audit chain — by the
same functions the month-end job stores. So the figures are the same either way, and a page reads the
whole history only for a month nobody has stored yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.fields.json import KT

from posfleet.audit.selectors import events_about
from posfleet.audit.vocabulary import EventType
from posfleet.closure.selectors import cases_visible_to
from posfleet.closure.states import ClosureReason
from posfleet.fleet.selectors import terminals_visible_to
from posfleet.fleet.states import DeactivationReason, Status
from posfleet.fleet.tallies import tallies_of
from posfleet.iam.models import User
from posfleet.parties.selectors import by_visible_agent, merchants_visible_to
from posfleet.platform.clock import now, start_of, today
from posfleet.reports.models import MonthEnd
from posfleet.reports.scope import add_months, month_key, months_back
from posfleet.reports.selectors import _by_month, _label, _model_name, _month

MODEL = ("model__code", "model__maker", "model__name")


def month_moment(first: date) -> datetime:
    """The end of the month starting ``first``: the start of the next one (provider's time zone)."""
    return start_of(add_months(first, 1))


def _stored(
    viewer: User, relation: str, firsts: Sequence[date], fields: Sequence[str]
) -> tuple[set[date], list[dict[str, Any]]]:
    """(the months of ``firsts`` whose figures are stored, their rows ``viewer`` may add up — all for
    the provider's staff, its subtree's agents' for an agent, through ``agents_visible_to`` — summed by
    ``fields``): one query, the stored months LEFT JOINed to their rows."""
    mine = by_visible_agent(viewer, f"{relation}__agent_id")
    if not firsts or mine is None:
        return set(), []
    rows = (  # every agent's rows of the months are joined (a few hundred), the scope's summed
        MonthEnd.objects.filter(month__in=firsts)
        .order_by()
        .values("month", *(f"{relation}__{f}" for f in fields))
        .annotate(n=Sum(f"{relation}__terminals", filter=mine))
    )
    done: set[date] = set()
    found = []
    for row in rows:
        done.add(row["month"])
        if row["n"]:
            found.append(
                {"month": row["month"], "n": row["n"], **{f: row[f"{relation}__{f}"] for f in fields}}
            )
    return done, found


# -- 1. the fleet by status and model at each month's end --------------------------------------------


@dataclass(frozen=True)
class FleetRow:
    month: str
    model: str  # terminal model code
    model_name: str
    status: str
    status_label: str
    terminals: int


def fleet_at(
    terminals: QuerySet[Any], moments: Sequence[datetime], keys: Sequence[str]
) -> list[tuple[int, tuple[Any, ...], str, int]]:
    """(moment's index, the terminal's ``keys``, status, terminals) for each of ``moments``: how many
    of ``terminals`` were in each status then, from their status periods — two queries whatever the
    number of moments. A terminal is in a period's status from its start (inclusive) to its end
    (exclusive); before its first period it was in stock since it was registered (imports write no
    period: ``fleet.models.StatusPeriod``)."""
    if not moments:
        return []
    terminals = terminals.order_by()
    covering = {
        f"m{i}": Count(
            "pk",
            filter=Q(status_periods__started_at__lt=moment)
            & (Q(status_periods__ended_at__isnull=True) | Q(status_periods__ended_at__gte=moment)),
        )
        for i, moment in enumerate(moments)
    }
    in_periods = (
        terminals.filter(  # one filter(): one join of the periods, which the counts below reuse
            Q(status_periods__started_at__lt=max(moments))
            & (Q(status_periods__ended_at__isnull=True) | Q(status_periods__ended_at__gte=min(moments)))
        )
        .values(*keys, "status_periods__status")
        .annotate(**covering)
    )
    # Before their first period: registered by then, no period started by then.
    not_started = {
        **{
            f"r{i}": Count("pk", distinct=True, filter=Q(registered_at__lt=moment))
            for i, moment in enumerate(moments)
        },
        **{
            f"p{i}": Count("pk", distinct=True, filter=Q(status_periods__started_at__lt=moment))
            for i, moment in enumerate(moments)
        },
    }
    in_stock = terminals.values(*keys).annotate(**not_started)
    out: list[tuple[int, tuple[Any, ...], str, int]] = []
    for row in cast(list[dict[str, Any]], list(in_periods)):
        key = tuple(row[k] for k in keys)
        out.extend(
            (i, key, row["status_periods__status"], row[f"m{i}"]) for i in range(len(moments)) if row[f"m{i}"]
        )
    for row in cast(list[dict[str, Any]], list(in_stock)):
        key = tuple(row[k] for k in keys)
        for i in range(len(moments)):
            waiting = row[f"r{i}"] - row[f"p{i}"]
            if waiting > 0:
                out.append((i, key, Status.IN_STOCK.value, waiting))
    return out


def fleet_by_month(viewer: User, months: int) -> list[FleetRow]:
    """How many terminals of each model were in each status at the end of each of the last ``months``
    months (this month: now). Ended months from their stored figures (one query), any not stored yet
    from the status periods (two), this month from the fleet's counters (one; for a reader without
    counters, from the periods)."""
    firsts = months_back(months, today())
    done, stored = _stored(viewer, "fleet", firsts[:-1], (*MODEL, "status"))
    counts: dict[tuple[date, str, str], int] = {}
    names: dict[str, str] = {}

    def add(first: date, code: str, maker: str, name: str, status: str, n: int) -> None:
        names[code] = _model_name(maker, name)
        counts[(first, code, status)] = counts.get((first, code, status), 0) + n

    for row in stored:
        add(
            row["month"], row["model__code"], row["model__maker"], row["model__name"], row["status"], row["n"]
        )
    live = [first for first in firsts[:-1] if first not in done]
    tallies = tallies_of(viewer)
    if tallies is None:
        live.append(firsts[-1])
    else:
        for code, maker, name, status, n in (
            tallies.order_by()
            .values_list(*MODEL, "status")
            .annotate(total=Sum("n"))
            .values_list(*MODEL, "status", "total")
        ):
            if n:
                add(firsts[-1], code, maker, name, status, n)
    at = now()
    moments = [min(month_moment(first), at) for first in live]
    for i, (code, maker, name), status, n in fleet_at(terminals_visible_to(viewer), moments, MODEL):
        add(live[i], code, maker, name, status, n)
    order = {status.value: n for n, status in enumerate(Status)}
    return [
        FleetRow(
            month=month_key(first),
            model=code,
            model_name=names[code],
            status=status,
            status_label=_label(Status, status),
            terminals=n,
        )
        for (first, code, status), n in sorted(
            counts.items(), key=lambda kv: (kv[0][0], kv[0][1], order.get(kv[0][2], 99))
        )
    ]


# -- 2. activations, deactivations and closures per month, with their reasons ------------------------

ACTIVITY_EVENTS = (
    EventType.TERMINAL_ACTIVATED,
    EventType.TERMINAL_DEACTIVATED,
    EventType.TERMINAL_DEREGISTERED,
)
CLOSURE_REQUESTED = EventType.CLOSURE_REQUESTED


@dataclass(frozen=True)
class ActivityRow:
    month: str
    event: str  # the audit event type: terminal.activated, terminal.deactivated, closure.requested…
    event_label: str
    reason: str  # a deactivation reason (fleet.states) or a closure reason (closure.states); "" if none
    reason_label: str
    terminals: int


def _ranges(firsts: Iterable[date], until: datetime) -> Q:
    """``occurred_at`` within any of these months (up to ``until``), neighbours joined into one range."""
    spans: list[list[datetime]] = []
    for first in sorted(firsts):
        start, end = start_of(first), min(month_moment(first), until)
        if spans and spans[-1][1] >= start:
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([start, end])
    q = Q(pk__in=[])
    for start, end in spans:
        q |= Q(occurred_at__gte=start, occurred_at__lt=end)
    return q


def per_month(firsts: Sequence[date], until: datetime) -> dict[str, Count]:
    """One count per month of ``firsts`` (``m0``, ``m1``…) of the events within it (up to ``until``):
    plain comparisons of ``occurred_at``, where grouping by a truncated date would call a function on
    every event (on SQLite, Python's)."""
    return {
        f"m{i}": Count(
            "pk", filter=Q(occurred_at__gte=start_of(first), occurred_at__lt=min(month_moment(first), until))
        )
        for i, first in enumerate(firsts)
    }


def activity_events(firsts: Iterable[date], until: datetime) -> QuerySet[Any]:
    """The terminal changes the activity report counts, in these months: activations, deactivations
    and deregistrations from the audit chain, the one record of every change and its reason."""
    return events_about("terminal").filter(
        _ranges(firsts, until), event_type__in=[e.value for e in ACTIVITY_EVENTS]
    )


def activity_by_month(viewer: User, months: int) -> list[ActivityRow]:
    """Per month: terminals activated, deactivated (by deactivation reason) and deregistered (by
    reason) — each counted for the merchant the terminal was with — and the terminals of the closure
    cases asked for (by closure reason). Ended months from their stored figures (one query), this month
    and any not stored yet from the audit chain (one), the closure cases live (one)."""
    firsts = months_back(months, today())
    done, stored = _stored(viewer, "activity", firsts[:-1], ("event_type", "reason"))
    live = [first for first in firsts if first not in done]
    events = activity_events(live, now())
    if not viewer.is_provider_staff:
        # The merchant the terminal was with at the time (its audit snapshot, ``Terminal.snapshot``),
        # among those the viewer sees: a closed terminal back in the warehouse still counts for the
        # agent whose merchant closed it.
        mids = merchants_visible_to(viewer).order_by().values("mid")
        events = events.annotate(merchant=KT("before__merchant")).filter(merchant__in=mids)
    changes = events.order_by().values("event_type", "reason").annotate(**per_month(live, now()))
    closures = (
        cases_visible_to(viewer)
        .filter(requested_at__gte=start_of(firsts[0]))
        .order_by()
        .annotate(month=_by_month("requested_at"))
        .values("month", "reason")
        .annotate(n=Count("terminals"))
    )
    found = [(r["month"], r["event_type"], r["reason"] or "", r["n"]) for r in stored] + [
        (first, r["event_type"], r["reason"] or "", r[f"m{i}"])
        for r in (changes if live else ())
        for i, first in enumerate(live)
        if r[f"m{i}"]
    ]
    rows = [
        ActivityRow(
            month=_month(month),
            event=event,
            event_label=_label(EventType, event),
            reason=reason,
            reason_label=_label(DeactivationReason, reason) if reason else "",
            terminals=n,
        )
        for month, event, reason, n in found
    ] + [
        ActivityRow(
            month=_month(r["month"]),
            event=CLOSURE_REQUESTED.value,
            event_label=str(CLOSURE_REQUESTED.label),
            reason=r["reason"],
            reason_label=_label(ClosureReason, r["reason"]),
            terminals=r["n"],
        )
        for r in closures
        if r["n"]
    ]
    order = {e.value: n for n, e in enumerate((*ACTIVITY_EVENTS, CLOSURE_REQUESTED))}
    return sorted(rows, key=lambda r: (r.month, order[r.event], r.reason))
