"""What the console and the API show of closure cases: one read model for both (``case_view``), and
the scoped lists (open, stuck, late)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from posfleet.closure.models import CaseStep, ClosureCase
from posfleet.closure.quote import effect_text, line_text
from posfleet.closure.states import (
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
    if command not in perm or not user.has_perm(perm[command], case.merchant):
        return False
    return not (command in ("approve", "reject") and case.requested_by_id == user.pk)


def _next_words(case: ClosureCase, steps: list[StepView]) -> str:
    if case.status == CaseStatus.REQUESTED:
        return _(
            "Your request is being reviewed; a decision is due by %(day)s. You may still withdraw it."
        ) % {"day": case.review_due_at.date().isoformat()}
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
