"""/terminals: search, detail, timeline, transitions (one and bulk)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router

from posfleet.api import presenters
from posfleet.api import schemas as s
from posfleet.api.auth import IdempotencyKey, StepUpCode, actor
from posfleet.api.idempotency import Outcome, execute
from posfleet.api.pagination import PageQuery, keyset
from posfleet.billing.selectors import dormant
from posfleet.fleet.selectors import (
    CARD_FIELDS,
    TerminalFilters,
    search_order,
    search_terminals,
    terminal_card,
)
from posfleet.fleet.services import terminal_transition, terminals_bulk_transition
from posfleet.fleet.states import SPECS
from posfleet.fleet.timeline import terminal_timeline, timeline_entries
from posfleet.platform.clock import now
from posfleet.platform.context import Actor

router = Router(tags=["terminals"])


@router.get("/terminals", summary="List terminals", response=s.responses({200: s.TerminalPage}, s.READ_LIST))
def terminals_list(
    request: HttpRequest, filters: Query[s.TerminalQuery], page: Query[PageQuery]
) -> s.TerminalPage:
    """Terminals the caller may see, in SN order. Filters combine (AND); `status` may repeat."""
    who = actor(request)
    assert who.user is not None
    qs = search_terminals(
        who.user,
        TerminalFilters(
            statuses=tuple(filters.status),
            model=filters.model,
            agent=filters.agent,
            merchant=filters.merchant,
            sim_expires_from=filters.sim_expires_from,
            sim_expires_to=filters.sim_expires_to,
            q=filters.q,
        ),
    )
    if filters.dormant_days is not None:
        qs = dormant(qs, filters.dormant_days, now())
    rows, cursor = keyset(
        qs.only(*CARD_FIELDS),
        list_name="terminals",
        key="sn",
        page=page,
        by=search_order("sn", filters.q.strip()),
    )
    return s.TerminalPage(items=[presenters.terminal(t, who) for t in rows], next_cursor=cursor)


# Before /terminals/{sn}: Django matches URL patterns in order.
@router.post(
    "/terminals/bulk-transitions",
    summary="Run a command on many terminals",
    response=s.responses({200: s.BulkOut}, (400, 401, 403, 409, 422)),
)
def terminals_bulk_transition_create(
    request: HttpRequest,
    body: s.BulkTransitionIn,
    idempotency_key: IdempotencyKey = None,
    step_up: StepUpCode = None,
) -> HttpResponse:
    """Run one command over many terminals. Answers 200 with a result per SN, even when some fail;
    the step-up code is verified once for the whole batch."""

    def work(who: Actor) -> Outcome:
        results = terminals_bulk_transition(
            actor=who,
            sns=body.sns,
            action=body.action,
            reason=body.reason,
            note=body.note,
            params=body.params,
        )
        out = s.BulkOut(
            results=[
                s.BulkItemOut(sn=r.sn, ok=r.ok, status=r.status, code=r.code, detail=r.detail)
                for r in results
            ],
            succeeded=sum(1 for r in results if r.ok),
            failed=sum(1 for r in results if not r.ok),
        )
        return Outcome(200, presenters.dump(out))

    return execute(
        request,
        actor(request),
        work,
        key=idempotency_key,
        step_up_needed=SPECS[body.action].step_up,
        step_up_code=step_up,
    )


@router.get(
    "/terminals/{sn}", summary="Get a terminal", response=s.responses({200: s.TerminalOut}, s.READ_ONE)
)
def terminal_detail(request: HttpRequest, sn: str) -> s.TerminalOut:
    who = actor(request)
    assert who.user is not None
    return presenters.terminal(terminal_card(who.user, sn), who)


@router.get(
    "/terminals/{sn}/events",
    summary="A terminal's audit timeline",
    response=s.responses({200: s.EventPage}, s.READ_ONE),
)
def terminal_events(request: HttpRequest, sn: str, page: Query[PageQuery]) -> s.EventPage:
    """The terminal's audit timeline, oldest first, including the import of its batch."""
    who = actor(request)
    assert who.user is not None
    timeline = terminal_timeline(who.user, sn)
    rows, cursor = keyset(timeline.events, list_name=f"events:{timeline.terminal.sn}", key="seq", page=page)
    return s.EventPage(items=[presenters.event(e) for e in timeline_entries(rows)], next_cursor=cursor)


@router.post(
    "/terminals/{sn}/transitions",
    summary="Run a command on a terminal",
    response=s.responses({200: s.TerminalOut}, s.WRITE),
)
def terminal_transition_create(
    request: HttpRequest,
    sn: str,
    body: s.TransitionIn,
    idempotency_key: IdempotencyKey = None,
    step_up: StepUpCode = None,
) -> HttpResponse:
    """Run one command of the terminal life (allocate, ship, bind, activate, suspend, deactivate...)."""

    def work(who: Actor) -> Outcome:
        terminal = terminal_transition(
            actor=who,
            sn=sn,
            action=body.action,
            reason=body.reason,
            note=body.note,
            params=body.params,
        )
        return Outcome(200, presenters.dump(presenters.terminal(terminal, who)))

    return execute(
        request,
        actor(request),
        work,
        key=idempotency_key,
        step_up_needed=SPECS[body.action].step_up,
        step_up_code=step_up,
    )
