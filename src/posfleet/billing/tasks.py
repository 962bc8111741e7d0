"""Money jobs for the scheduler (a later issue registers them): plain functions, safe to run twice."""

from __future__ import annotations

from datetime import timedelta

from posfleet.billing.models import SettlementRun
from posfleet.billing.services.settlement import settlement_run
from posfleet.platform.clock import today
from posfleet.platform.context import Actor


def settle_yesterday() -> SettlementRun:
    """T+1: settle yesterday (Asia/Shanghai). A finished day is left as it is; an interrupted one
    resumes where it stopped."""
    return settlement_run(actor=Actor.job("settle_yesterday"), business_date=today() - timedelta(days=1))
