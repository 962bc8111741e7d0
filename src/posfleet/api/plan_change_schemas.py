"""Bodies of plan change requests (换费率方案申请, ADR 0027)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from ninja import Schema
from pydantic import Field

from posfleet.api.money_schemas import Day, Mid

Status = Literal["requested", "approved", "rejected", "withdrawn"]


class PlanChangeIn(Schema):
    merchant: Mid
    to_plan: str = Field(min_length=1, max_length=40, description="One of our plans (not a competitor's).")
    effective_from: Day = Field(description="Today or later, within a year.")
    note: str = Field("", max_length=255)


class DecisionIn(Schema):
    reason: str = Field("", max_length=255, description="Why (needed to reject).")


class PlanChangeQuery(Schema):
    merchant: str | None = Field(None, max_length=15, description="Only this merchant's (MID).")
    status: Status | None = None


class PlanChangeOut(Schema):
    id: int
    merchant: str = Field(description="MID.")
    from_plan: str | None = Field(description="The plan the merchant was on when it asked.")
    to_plan: str
    effective_from: date = Field(description="The day asked for.")
    applies_from: date | None = Field(description="An approval's: the day the plan is assigned from.")
    status: Status
    status_label: str
    note: str
    requested_by: str
    requested_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    reason: str


class PlanChangePage(Schema):
    items: list[PlanChangeOut]
    next_cursor: str | None
