"""What the console and the API show of closure cases: one read model for both (``case_view``), and
the scoped lists (open, stuck, late)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from posfleet.closure.models import CaseStep, CaseTerminal, ClosureCase
from posfleet.closure.quote import effect_text, line_text
from posfleet.closure.states import (
    FINISHED_STEP,
    SPEC,
    STEPS,
    CaseStatus,
    ClosureReason,
    Party,
    StepName,
    StepState,
    commands_from,
    review_overdue,
)
from posfleet.iam.models import Role, User
from posfleet.platform.clock import now
from posfleet.platform.dates import day_text

STUCK_AFTER = timedelta(hours=24)  # a step waiting on a machine or failing this long is "stuck"
MACHINE_PARTIES = frozenset({Party.CHANNEL, Party.DEVICE, Party.SYSTEM})


def cases_visible_to(user: User) -> QuerySet[ClosureCase]:
    qs = ClosureCase.objects.select_related("merchant", "merchant__agent")
    if not user.is_authenticated or not user.is_active:
        return qs.none()
    if user.is_provider_staff:
        return qs
    if user.role == Role.AGENT and user.organisation is not None:
        return qs.filter(merchant__agent__organisation__path__startswith=user.organisation.path)
    if user.role == Role.MERCHANT and user.organisation_id is not None:
        return qs.filter(merchant__organisation_id=user.organisation_id)
    return qs.none()


def filter_cases(qs: QuerySet[ClosureCase], view: str, at: datetime | None = None) -> QuerySet[ClosureCase]:
    """``open`` (asked or running), ``review`` (waiting for a decision), ``late`` (review past its clock,
    or a device past its return deadline), ``stuck`` (a step needing attention, or retrying or waiting
    on a machine for over a day), ``done``."""
    at = at or now()
    if view == "open":
        return qs.filter(status__in=[CaseStatus.REQUESTED, CaseStatus.RUNNING])
    if view == "review":
        return qs.filter(status=CaseStatus.REQUESTED)
    if view == "late":
        return qs.filter(
            Q(status=CaseStatus.REQUESTED, review_due_at__lt=at)
            | Q(
                status=CaseStatus.RUNNING,
                return_due_on__lt=at.date(),
                steps__name=StepName.RETURN,
                steps__state=StepState.WAITING,
            )
        ).distinct()
    if view == "stuck":
        since = at - STUCK_AFTER
        return qs.filter(
            Q(steps__state=StepState.FAILED)
            | Q(steps__state=StepState.PENDING, steps__attempts__gt=0, steps__started_at__lt=since)
            | Q(
                steps__state=StepState.WAITING,
                steps__waiting_for__in=MACHINE_PARTIES,
                steps__waiting_since__lt=since,
            ),
            status=CaseStatus.RUNNING,
        ).distinct()
    if view == "done":
        return qs.filter(status__in=[CaseStatus.COMPLETED, CaseStatus.WITHDRAWN, CaseStatus.REJECTED])
    return qs


@dataclass(frozen=True)
class StepView:
    name: str
    label: str
    state: str
    state_label: str
    waiting_for: str
    waiting_for_label: str
    since: datetime | None
    attempts: int
    message: str
    next_words: str
    evidence: dict[str, Any]
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True)
class CaseView:
    case: ClosureCase
    terminals: list[dict[str, Any]]
    steps: list[StepView]
    quote_lines: list[dict[str, Any]]
    actions: list[str]
    review_overdue: bool
    next_words: str  # what happens next, in plain words (the merchant's portal)


def case_view(user: User, case: ClosureCase) -> CaseView:
    """Everything a case's page and its API detail show."""
    rows = {s.name: s for s in CaseStep.objects.filter(case=case)}
    steps = []
    for spec in STEPS:
        row = rows.get(spec.name)
        state = (
            row.state if row else ("todo" if case.status in (CaseStatus.REQUESTED,) else StepState.PENDING)
        )
        steps.append(
            StepView(
                name=spec.name,
                label=str(spec.label),
                state=state,
                state_label=str(StepState(state).label) if state in StepState.values else "",
                waiting_for=row.waiting_for if row else "",
                waiting_for_label=str(Party(row.waiting_for).label) if row and row.waiting_for else "",
                since=(
                    row.waiting_since
                    if row and row.state == StepState.WAITING
                    else row.started_at
                    if row
                    else None
                ),
                attempts=row.attempts if row else 0,
                message=row.message if row else "",
                next_words=str(spec.next_words),
                evidence=row.evidence if row else {},
                started_at=row.started_at if row else None,
                finished_at=row.finished_at if row else None,
            )
        )
    terminals = [
        {
            "sn": e.terminal.sn,
            "status": e.terminal.status,
            "received_at": e.received_at,
            "grade": e.grade,
            "human_damage": e.human_damage,
            "damage_fen": e.damage_fen,
            "recovery_fee_fen": e.recovery_fee_fen,
            "recovery_value_fen": e.recovery_value_fen,
            "disposal": e.disposal,
        }
        for e in case.terminals.select_related("terminal").order_by("pk")
    ]
    quote_lines = [
        {**line, "text": line_text(line), "effect_text": effect_text(line["effect"])}
        for line in (case.quote or {}).get("lines", [])
    ]
    actions = [c.value for c in commands_from(case.status) if _may(user, c.value, case)]
    return CaseView(
        case=case,
        terminals=terminals,
        steps=steps,
        quote_lines=quote_lines,
        actions=actions,
        review_overdue=review_overdue(case.status, case.review_due_at, now()),
        next_words=_next_words(case, steps),
    )


def _may(user: User, command: str, case: ClosureCase) -> bool:
    perm = {
        "withdraw": "closure.withdraw_closure",
        "approve": "closure.review_closure",
        "reject": "closure.review_closure",
    }
    if command in ("approve", "reject"):  # on the case: an agent termination is its agent's (ADR 0023)
        return user.has_perm("closure.decide_case", case) and case.requested_by_id != user.pk
    if command == "withdraw" and case.kind == "agent_termination":
        return user.has_perm("closure.request_agent_termination", case.merchant)
    return command in perm and user.has_perm(perm[command], case.merchant)


def _next_words(case: ClosureCase, steps: list[StepView]) -> str:
    if case.status == CaseStatus.REQUESTED:
        return _(
            "Your request is being reviewed; a decision is due by %(day)s. You may still withdraw it."
        ) % {"day": day_text(case.review_due_at)}
    if case.status == CaseStatus.COMPLETED:
        return _("Your terminal is closed. The closure certificate and the final statement are ready.")
    if case.status in (CaseStatus.WITHDRAWN, CaseStatus.REJECTED):
        return str(CaseStatus(case.status).label)
    for step in steps:
        if step.state not in (StepState.DONE, StepState.SKIPPED):
            return step.next_words
    return ""


def reasons() -> list[tuple[str, str]]:
    return [(value, str(label)) for value, label in ClosureReason.choices]


def step_spec(name: str) -> Any:
    return SPEC[StepName(name)]


# -- the console's lists (added for the console's closure pages) -------------------------------------------


@dataclass(frozen=True)
class CaseRow:
    """What a list row shows of a case besides the case itself: its terminals, the first step not
    finished (whom it waits for, since when) and how many steps are finished."""

    sns: list[str]
    current: StepView | None
    finished: int
    total: int


def case_rows(cases: list[ClosureCase]) -> dict[int, CaseRow]:
    """The rows of a page of cases, in two queries (terminals, steps)."""
    ids = [c.pk for c in cases]
    sns: dict[int, list[str]] = {pk: [] for pk in ids}
    for case_id, sn in (
        CaseTerminal.objects.filter(case_id__in=ids).order_by("pk").values_list("case_id", "terminal__sn")
    ):
        sns[case_id].append(sn)
    steps: dict[int, dict[str, CaseStep]] = {pk: {} for pk in ids}
    for row in CaseStep.objects.filter(case_id__in=ids):
        steps[row.case_id][row.name] = row
    out = {}
    for pk in ids:
        rows = steps[pk]
        current = None
        for spec in STEPS:
            found = rows.get(spec.name)
            if found is not None and found.state not in FINISHED_STEP:
                current = _step_view(spec, found)
                break
        out[pk] = CaseRow(
            sns=sns[pk],
            current=current,
            finished=sum(1 for r in rows.values() if r.state in FINISHED_STEP),
            total=len(STEPS),
        )
    return out


def _step_view(spec: Any, row: CaseStep) -> StepView:
    return StepView(
        name=spec.name,
        label=str(spec.label),
        state=row.state,
        state_label=str(StepState(row.state).label),
        waiting_for=row.waiting_for,
        waiting_for_label=str(Party(row.waiting_for).label) if row.waiting_for else "",
        since=row.waiting_since if row.state == StepState.WAITING else row.started_at,
        attempts=row.attempts,
        message=row.message,
        next_words=str(spec.next_words),
        evidence=row.evidence,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def case_terminal_sns(case: ClosureCase) -> dict[int, str]:
    """Terminal id → SN of a case's terminals (evidence is keyed by terminal id in places)."""
    return dict(CaseTerminal.objects.filter(case=case).values_list("terminal_id", "terminal__sn"))


def closure_entry_of_terminal(terminal_id: int) -> CaseTerminal | None:
    """The terminal's place in the closure case it is in now (``open``), else in the latest it was in
    (withdrawn, rejected or done), with the case and its merchant as ``closure.view_closure`` reads
    it; None when it was never in one. The caller asks that rule before it shows the case."""
    return (
        CaseTerminal.objects.filter(terminal_id=terminal_id)
        .select_related("case__merchant__organisation", "case__merchant__agent__organisation")
        .order_by("-open", "-case__requested_at", "-id")
        .first()
    )


def open_case_numbers(terminal_ids: list[int]) -> dict[int, str]:
    """Terminal id → the number of the open case it is in (a terminal is in at most one)."""
    return dict(
        CaseTerminal.objects.filter(terminal_id__in=terminal_ids, open=True).values_list(
            "terminal_id", "case__number"
        )
    )


@dataclass(frozen=True)
class ReturnEntry:
    """A device of an open case, as the warehouse sees it."""

    case: ClosureCase
    sn: str
    model: str
    due_on: date | None
    reference: str
    tracking_no: str
    received_at: datetime | None
    inspected_at: datetime | None
    overdue: bool
    damage_prices: dict[str, int]


def _return_entry(entry: CaseTerminal, on: date) -> ReturnEntry:
    case = entry.case
    return ReturnEntry(
        case=case,
        sn=entry.terminal.sn,
        model=f"{entry.terminal.model.maker} {entry.terminal.model.name}",
        due_on=case.return_due_on,
        reference=case.return_reference,
        tracking_no=case.tracking_no,
        received_at=entry.received_at,
        inspected_at=entry.inspected_at,
        overdue=entry.received_at is None and case.return_due_on is not None and case.return_due_on < on,
        damage_prices={
            k: int(v) for k, v in ((entry.contract.damage_prices if entry.contract else {}) or {}).items()
        },
    )


def _open_entries(user: User) -> QuerySet[CaseTerminal]:
    return CaseTerminal.objects.filter(
        open=True, case__in=cases_visible_to(user).filter(status=CaseStatus.RUNNING)
    ).select_related("case", "case__merchant", "terminal", "terminal__model", "contract")


def returns_expected(user: User) -> tuple[list[ReturnEntry], list[ReturnEntry]]:
    """The warehouse's two lists: devices expected back (their case's return step waiting; the
    earliest deadline first) and devices received but not yet inspected."""
    on = now().date()
    expected = [
        _return_entry(e, on)
        for e in _open_entries(user)
        .filter(
            received_at__isnull=True,
            case__steps__name=StepName.RETURN,
            case__steps__state=StepState.WAITING,
        )
        .order_by("case__return_due_on", "case__number", "pk")
    ]
    to_inspect = [
        _return_entry(e, on)
        for e in _open_entries(user)
        .filter(received_at__isnull=False, inspected_at__isnull=True)
        .order_by("received_at", "pk")
    ]
    return expected, to_inspect


def return_entry_for(user: User, sn: str) -> ReturnEntry | None:
    """The device ``sn`` of an open case ``user`` may see, or None."""
    entry = _open_entries(user).filter(terminal__sn=(sn or "").strip().upper()[:32]).order_by("-pk").first()
    return _return_entry(entry, now().date()) if entry is not None else None
