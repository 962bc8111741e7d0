"""What every part of the demo writer shares: its actor, the plan, the clock of the story, and the
rows and replays one part writes and the next reads."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from django.conf import settings

from posfleet.demo.plan import Plan, TerminalPlan
from posfleet.fleet.services import TID_START
from posfleet.iam.models import Organisation, Role, User
from posfleet.parties.models import Agent, Merchant, Store
from posfleet.platform.context import Actor

if TYPE_CHECKING:
    from posfleet.demo.fleet.replay import TerminalReplay

# The actor of the events the demo itself stands for (and the caller of record_many).
SYSTEM = Actor.system("demo")

MONEY = ("system", "money")  # contracts, deposits: the system's morning run (see money/contracts.py)


class DemoState:
    """The demo being written. ``rows.Rows`` writes its rows, ``history.History`` its history; the
    attributes declared without a value are set by the step that makes them."""

    people: list[tuple[str, Role, Organisation, int]]  # (username, role, organisation, days ago)
    lot_members: dict[int, list[TerminalPlan]]  # lot -> its terminals, by SN
    replays: list[TerminalReplay]
    lot_times: dict[int, datetime]  # lot -> when its import was recorded
    terminal_ids: list[int]  # of each replay

    def __init__(self, plan: Plan, write: Callable[[str], None]) -> None:
        self.plan = plan
        self.write = write
        self.zone = ZoneInfo(settings.TIME_ZONE)
        self.midnight = datetime.combine(plan.today, time(0), self.zone)
        self.tids: Iterator[int] = iter(())
        self.actors: dict[tuple[str, ...], Actor] = {}
        self.users: dict[str, User] = {}
        self.organisations: dict[str, Organisation] = {}
        self.agents: list[Agent] = []
        self.merchants: list[Merchant] = []
        self.stores: list[list[Store]] = []
        self.model_ids: list[int] = []

    def day(self, ago: int) -> datetime:
        return self.midnight - timedelta(days=ago)

    def next_tid(self) -> str:
        return f"{TID_START + next(self.tids):08d}"


def batch_name(day: datetime) -> str:
    return f"DEMO-{day:%Y%m%d}"
