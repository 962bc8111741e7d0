"""Fixtures for the API tests: the fleet of four terminals, clients per persona, a frozen clock."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import time_machine

from posfleet.api.tests.helpers import PERSONAS, SN_A, SN_A1, SN_B, SN_STOCK, Api, Clock, new_token
from posfleet.fleet.models import Terminal
from posfleet.fleet.states import Status
from posfleet.testing.personas import World, make_terminal


@pytest.fixture
def fleet(world: World) -> dict[str, Terminal]:
    return {
        SN_A: make_terminal(world, SN_A, Status.ACTIVE),
        SN_A1: make_terminal(world, SN_A1, Status.ACTIVE, merchant=world.merchant_a1),
        SN_B: make_terminal(world, SN_B, Status.ACTIVE, merchant=world.merchant_b),
        SN_STOCK: make_terminal(world, SN_STOCK, Status.IN_STOCK),
    }


@pytest.fixture
def api_as(world: World):
    """api_as("agent_a") -> an Api with a read-write token of that persona (made up front, so that
    making it never shows up in a test's audit count); api_as(name, "read") -> a read-only one."""
    cache: dict[tuple[str, str], Api] = {(p, "write"): Api(new_token(world.user(p))) for p in PERSONAS}

    def make(persona: str | None, scope: str = "write") -> Api:
        if persona is None:
            return Api()
        if (persona, scope) not in cache:
            cache[(persona, scope)] = Api(new_token(world.user(persona), scope))
        return cache[(persona, scope)]

    return make


@pytest.fixture
def clock() -> Iterator[Clock]:
    """Time stands still (a TOTP code is accepted once; move on with clock.advance())."""
    start = datetime.fromtimestamp((int(time.time()) // 30 + 2) * 30 + 1, tz=UTC)
    with time_machine.travel(start, tick=False) as traveller:
        yield Clock(traveller)
