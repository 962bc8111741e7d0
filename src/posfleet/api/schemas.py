"""Request and response bodies. Status fields are read-only here as everywhere (STYLE.md §1)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from ninja import Schema
from pydantic import BeforeValidator, Field, model_validator

from posfleet.api.problems import Problem
from posfleet.fleet.states import Command, Status
from posfleet.platform.dates import check_range, is_iso_day


def _iso_day(value: object) -> object:
    """A query date is ``YYYY-MM-DD`` and nothing else: pydantic would read a number as a Unix time."""
    if isinstance(value, str) and not is_iso_day(value):
        raise ValueError("a date is written YYYY-MM-DD")
    if isinstance(value, int | float):
        raise ValueError("a date is written YYYY-MM-DD")
    return value


# Dates given as filters (query parameters).
QueryDate = Annotated[date, BeforeValidator(_iso_day)]


def in_order(start: str, end: str) -> Any:
    """A query schema's validator: its ``start`` day is not after its ``end`` day (platform.dates), or
    the request is refused with 422 naming ``start``. Use as ``range_in_order = in_order("a", "b")``."""

    def check(query: Any) -> Any:
        check_range(getattr(query, start), getattr(query, end), field=start)
        return query

    return model_validator(mode="after")(check)


# ---------------------------------------------------------------------------------------------
# Error responses each kind of operation declares (OpenAPI completeness).

# 422 everywhere: any input (path, query, header, body) carrying a NUL character is refused (api/edge.py).
READ_LIST = (401, 422)
READ_ONE = (401, 404, 422)
WRITE = (400, 401, 403, 404, 409, 422)


def responses(ok: dict[int, Any], errors: tuple[int, ...]) -> dict[int, Any]:
    return {**ok, **dict.fromkeys(errors, Problem)}


# ---------------------------------------------------------------------------------------------
# Terminals


class TerminalQuery(Schema):
    status: list[Status] = Field(default_factory=list, description="Repeat for several statuses.")
    model: str = Field("", max_length=40, description="Terminal model code.")
    agent: str = Field("", max_length=16, description="Agent code.")
    merchant: str = Field("", max_length=15, description="Merchant ID (MID).")
    sim_expires_from: QueryDate | None = None
    sim_expires_to: QueryDate | None = None
    q: str = Field(
        "",
        max_length=32,
        description=(
            "A part of an SN or TID, in any case: three characters or more anywhere in it, one or two "
            "at its start."
        ),
    )
    dormant_days: int | None = Field(
        None,
        ge=1,
        le=3650,
        description="Only dormant terminals: no approved sale in this many days up to now "
        "(declines, refunds and reversals do not count).",
    )

    range_in_order = in_order("sim_expires_from", "sim_expires_to")


class TerminalOut(Schema):
    sn: str
    tid: str | None
    status: Status
    status_label: str
    status_reason: str
    status_changed_at: datetime | None
    model: str = Field(description="Terminal model code.")
    merchant: str | None = Field(description="Merchant ID (MID).")
    agent: str | None = Field(description="Agent code.")
    store: str | None = Field(description="Store code.")
    sim_iccid: str
    service_expires_on: date | None
    firmware_version: str
    last_heartbeat_at: datetime | None
    connectivity: Literal["online", "offline", "never"] = Field(
        description="online: a heartbeat within the last 10 minutes; offline: earlier ones only; never."
    )
    registered_at: datetime
    allowed_actions: list[Command] = Field(description="What the caller may do with it now.")


class TerminalPage(Schema):
    items: list[TerminalOut]
    next_cursor: str | None


class TransitionIn(Schema):
    action: Command
    reason: str = Field("", max_length=48)
    note: str = Field("", max_length=2000)
    params: dict[str, str] = Field(
        default_factory=dict,
        description="allocate: agent_code; ship: carrier, tracking_no; bind: merchant_mid, store_code, tid.",
    )


class BulkTransitionIn(TransitionIn):
    sns: list[str] = Field(description="Serial numbers, each handled on its own, in this order.")


class BulkItemOut(Schema):
    sn: str
    ok: bool
    status: str | None = Field(description="The new status when ok.")
    code: str | None = Field(description="The refusal's stable code when not ok.")
    detail: str | None


class BulkOut(Schema):
    results: list[BulkItemOut]
    succeeded: int
    failed: int


# ---------------------------------------------------------------------------------------------
# Audit events


class EventOut(Schema):
    seq: int
    occurred_at: datetime
    event_type: str
    event_label: str
    actor_kind: str
    actor_label: str
    subject_type: str
    subject_id: str
    reason: str
    note: str
    outcome: str
    before: dict[str, Any]
    after: dict[str, Any]


class EventPage(Schema):
    items: list[EventOut]
    next_cursor: str | None


# ---------------------------------------------------------------------------------------------
# Parties and the catalogue


class AgentOut(Schema):
    code: str
    name: str
    parent: str | None = Field(description="Code of the parent agent; null directly under the provider.")
    level: int
    contact_name: str
    contact_phone: str
    contact_masked: bool = Field(description="True when contact data is masked for the caller.")
    created_at: datetime


class AgentPage(Schema):
    items: list[AgentOut]
    next_cursor: str | None


class MerchantOut(Schema):
    mid: str
    name: str
    legal_name: str
    kind: str
    mcc: str
    status: str
    agent: str = Field(description="Code of the agent that signed the merchant.")
    contact_name: str
    contact_phone: str
    contact_email: str
    contact_masked: bool = Field(description="True when contact data is masked for the caller.")
    created_at: datetime


class MerchantPage(Schema):
    items: list[MerchantOut]
    next_cursor: str | None


class StoreOut(Schema):
    merchant: str
    code: str
    name: str
    city: str
    address: str


class StorePage(Schema):
    items: list[StoreOut]
    next_cursor: str | None


class TerminalModelOut(Schema):
    code: str
    maker: str
    name: str
    kind: str
    capabilities: list[str]


class TerminalModelPage(Schema):
    items: list[TerminalModelOut]
    next_cursor: str | None


# ---------------------------------------------------------------------------------------------
# Tokens and the caller


class TokenIn(Schema):
    name: str = Field(min_length=1, max_length=100)
    scope: Literal["read", "write"] = "read"
    expires_at: datetime | None = None


class TokenOut(Schema):
    id: int
    name: str
    prefix: str
    scope: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


class TokenCreatedOut(TokenOut):
    secret: str | None = Field(
        description="The token, shown once. A replay (same Idempotency-Key) answers null: it is not stored."
    )


class TokenPage(Schema):
    items: list[TokenOut]
    next_cursor: str | None


class OrganisationOut(Schema):
    id: int
    kind: str
    name: str
    code: str | None = Field(description="Agent code or merchant MID, when the organisation is one.")


class MeOut(Schema):
    username: str
    role: str
    role_label: str
    organisation: OrganisationOut | None
    language: str
    auth: Literal["token", "session"]
    token_id: int | None
    read_only: bool
