"""Turning domain objects into response bodies, for the caller. Personal contact data is masked
unless the caller is an admin or the party itself or its (parent) agent."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from posfleet.api import schemas as s
from posfleet.fleet.health import connectivity
from posfleet.fleet.selectors import allowed_commands
from posfleet.fleet.states import Status
from posfleet.iam.models import User
from posfleet.platform.clock import now
from posfleet.platform.context import Actor

if TYPE_CHECKING:
    from posfleet.fleet.models import Terminal, TerminalModel
    from posfleet.fleet.timeline import TimelineEntry
    from posfleet.iam.models import ApiToken


# ---------------------------------------------------------------------------------------------
# Masking: who may see contact data is a rule of the parties context (parties/rules.py).


def mask_phone(value: str) -> str:
    digits = value.strip()
    if not digits:
        return ""
    if len(digits) < 8:
        return "****"
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def mask_email(value: str) -> str:
    local, at, domain = value.strip().partition("@")
    if not local:
        return ""
    return f"{local[0]}***{at}{domain}" if at else "***"


def mask_name(value: str) -> str:
    name = value.strip()
    return name[:1] + "*" * max(len(name) - 1, 1) if name else ""


def may_see_merchant_contact(user: User, merchant: Any) -> bool:
    return user.has_perm("parties.view_merchant_contact", merchant)


def may_see_agent_contact(user: User, agent: Any) -> bool:
    return user.has_perm("parties.view_agent_contact", agent)


# ---------------------------------------------------------------------------------------------


def terminal(t: Terminal, who: Actor) -> s.TerminalOut:
    actions = [] if who.read_only or who.user is None else allowed_commands(who.user, t)
    return s.TerminalOut(
        sn=t.sn,
        tid=t.tid,
        status=Status(t.status),
        status_label=str(Status(t.status).label),
        status_reason=t.status_reason,
        status_changed_at=t.status_changed_at,
        model=t.model.code,
        merchant=t.merchant.mid if t.merchant is not None else None,
        agent=t.agent.code if t.agent is not None else None,
        store=t.store.code if t.store is not None else None,
        sim_iccid=t.sim_iccid,
        service_expires_on=t.service_expires_on,
        firmware_version=t.firmware_version,
        last_heartbeat_at=t.last_heartbeat_at,
        connectivity=connectivity(t.last_heartbeat_at, now()).value,
        registered_at=t.registered_at,
        allowed_actions=actions,
    )


def event(e: TimelineEntry) -> s.EventOut:
    """A timeline row (fleet/timeline.py: the same rows the console shows) as the API gives it."""
    return s.EventOut(
        seq=e.seq,
        occurred_at=e.occurred_at,
        event_type=e.event_type,
        event_label=str(e.event_label),
        actor_kind=e.actor_kind,
        actor_label=e.actor_label,
        subject_type=e.subject_type,
        subject_id=e.subject_id,
        reason=e.reason,
        note=e.note,
        outcome=e.outcome,
        before=dict(e.before),
        after=dict(e.after),
    )


def agent(a: Any, user: User) -> s.AgentOut:
    shown = may_see_agent_contact(user, a)
    parent_org = a.organisation.parent
    parent = getattr(parent_org, "agent", None) if parent_org is not None else None
    return s.AgentOut(
        code=a.code,
        name=a.name,
        parent=parent.code if parent is not None else None,
        level=a.level,
        contact_name=a.contact_name if shown else mask_name(a.contact_name),
        contact_phone=a.contact_phone if shown else mask_phone(a.contact_phone),
        contact_masked=not shown,
        created_at=a.created_at,
    )


def merchant(m: Any, user: User) -> s.MerchantOut:
    shown = may_see_merchant_contact(user, m)
    return s.MerchantOut(
        mid=m.mid,
        name=m.name,
        legal_name=m.legal_name,
        kind=m.kind,
        mcc=m.mcc,
        status=m.status,
        agent=m.agent.code,
        contact_name=m.contact_name if shown else mask_name(m.contact_name),
        contact_phone=m.contact_phone if shown else mask_phone(m.contact_phone),
        contact_email=m.contact_email if shown else mask_email(m.contact_email),
        contact_masked=not shown,
        created_at=m.created_at,
    )


def store(st: Any) -> s.StoreOut:
    return s.StoreOut(merchant=st.merchant.mid, code=st.code, name=st.name, city=st.city, address=st.address)


def terminal_model(m: TerminalModel) -> s.TerminalModelOut:
    return s.TerminalModelOut(
        code=m.code, maker=m.maker, name=m.name, kind=m.kind, capabilities=list(m.capabilities)
    )


def _token_fields(t: ApiToken) -> dict[str, Any]:
    return {
        "id": t.pk,
        "name": t.name,
        "prefix": t.prefix,
        "scope": t.scope,
        "created_at": t.created_at,
        "last_used_at": t.last_used_at,
        "expires_at": t.expires_at,
        "revoked_at": t.revoked_at,
    }


def token(t: ApiToken) -> s.TokenOut:
    return s.TokenOut(**_token_fields(t))


def token_created(t: ApiToken, secret: str | None) -> s.TokenCreatedOut:
    return s.TokenCreatedOut(**_token_fields(t), secret=secret)


def dump(schema: Any) -> Any:
    """A response body as ninja renders it (the same JSON for fresh answers and stored ones)."""
    return schema.model_dump()
