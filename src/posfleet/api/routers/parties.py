"""/agents, /merchants (with stores and timeline) and /terminal-models, always in the caller's scope."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Query, Router

from posfleet.api import presenters
from posfleet.api import schemas as s
from posfleet.api.auth import actor
from posfleet.api.pagination import PageQuery, keyset
from posfleet.audit.selectors import events_for_any
from posfleet.fleet.selectors import terminal_model_for, terminal_models
from posfleet.fleet.timeline import timeline_entries
from posfleet.iam.models import User
from posfleet.parties.selectors import (
    agent_for,
    agents_visible_to,
    merchant_for,
    merchants_visible_to,
    stores_visible_to,
)

router = Router()


def _user(request: HttpRequest) -> User:
    user = actor(request).user
    assert user is not None
    return user


# ---------------------------------------------------------------------------------------------
# Agents


@router.get(
    "/agents", summary="List agents", response=s.responses({200: s.AgentPage}, s.READ_LIST), tags=["agents"]
)
def agents_list(request: HttpRequest, page: Query[PageQuery]) -> s.AgentPage:
    """Agents the caller may see (staff: all; an agent: itself and its sub-agents), in code order."""
    user = _user(request)
    qs = agents_visible_to(user).select_related("organisation__parent__agent")
    rows, cursor = keyset(qs, list_name="agents", key="code", page=page)
    return s.AgentPage(items=[presenters.agent(a, user) for a in rows], next_cursor=cursor)


@router.get(
    "/agents/{code}",
    summary="Get an agent",
    response=s.responses({200: s.AgentOut}, s.READ_ONE),
    tags=["agents"],
)
def agent_detail(request: HttpRequest, code: str) -> s.AgentOut:
    user = _user(request)
    return presenters.agent(agent_for(user, code), user)


# ---------------------------------------------------------------------------------------------
# Merchants


@router.get(
    "/merchants",
    summary="List merchants",
    response=s.responses({200: s.MerchantPage}, s.READ_LIST),
    tags=["merchants"],
)
def merchants_list(request: HttpRequest, page: Query[PageQuery]) -> s.MerchantPage:
    """Merchants the caller may see, in MID order."""
    user = _user(request)
    rows, cursor = keyset(merchants_visible_to(user), list_name="merchants", key="mid", page=page)
    return s.MerchantPage(items=[presenters.merchant(m, user) for m in rows], next_cursor=cursor)


@router.get(
    "/merchants/{mid}",
    summary="Get a merchant",
    response=s.responses({200: s.MerchantOut}, s.READ_ONE),
    tags=["merchants"],
)
def merchant_detail(request: HttpRequest, mid: str) -> s.MerchantOut:
    user = _user(request)
    return presenters.merchant(merchant_for(user, mid), user)


@router.get(
    "/merchants/{mid}/stores",
    summary="A merchant's stores",
    response=s.responses({200: s.StorePage}, s.READ_ONE),
    tags=["merchants"],
)
def merchant_stores(request: HttpRequest, mid: str, page: Query[PageQuery]) -> s.StorePage:
    user = _user(request)
    merchant = merchant_for(user, mid)
    qs = stores_visible_to(user).filter(merchant=merchant)
    rows, cursor = keyset(qs, list_name=f"stores:{merchant.mid}", key="code", page=page)
    return s.StorePage(items=[presenters.store(st) for st in rows], next_cursor=cursor)


@router.get(
    "/merchants/{mid}/events",
    summary="A merchant's audit timeline",
    response=s.responses({200: s.EventPage}, s.READ_ONE),
    tags=["merchants"],
)
def merchant_events(request: HttpRequest, mid: str, page: Query[PageQuery]) -> s.EventPage:
    """The merchant's audit timeline (the merchant and its stores), oldest first."""
    user = _user(request)
    merchant = merchant_for(user, mid)
    subjects = [("merchant", merchant.mid)]
    subjects += [
        ("store", f"{merchant.mid}/{st.code}") for st in stores_visible_to(user).filter(merchant=merchant)
    ]
    rows, cursor = keyset(events_for_any(subjects), list_name=f"events:{merchant.mid}", key="seq", page=page)
    return s.EventPage(items=[presenters.event(e) for e in timeline_entries(rows)], next_cursor=cursor)


# ---------------------------------------------------------------------------------------------
# Terminal models: the catalogue, the same for everyone signed in.


@router.get(
    "/terminal-models",
    summary="List terminal models",
    response=s.responses({200: s.TerminalModelPage}, s.READ_LIST),
    tags=["terminal models"],
)
def terminal_models_list(request: HttpRequest, page: Query[PageQuery]) -> s.TerminalModelPage:
    actor(request)
    rows, cursor = keyset(terminal_models(), list_name="terminal-models", key="code", page=page)
    return s.TerminalModelPage(items=[presenters.terminal_model(m) for m in rows], next_cursor=cursor)


@router.get(
    "/terminal-models/{code}",
    summary="Get a terminal model",
    response=s.responses({200: s.TerminalModelOut}, s.READ_ONE),
    tags=["terminal models"],
)
def terminal_model_detail(request: HttpRequest, code: str) -> s.TerminalModelOut:
    actor(request)
    return presenters.terminal_model(terminal_model_for(code))
