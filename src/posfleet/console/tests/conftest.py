"""Fixtures of the console tests: a frozen clock for TOTP codes, signed-in clients, terminals."""

from __future__ import annotations

import pytest
import time_machine
from django.test import Client

from posfleet.console.tests.helpers import SN_A, SN_A1, SN_B, T0
from posfleet.fleet.states import Status
from posfleet.testing.personas import make_terminal
from posfleet.testing.sessions import sign_in


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def terminals(world):
    return {
        SN_A: make_terminal(world, SN_A, Status.ACTIVE, merchant=world.merchant_a),
        SN_A1: make_terminal(world, SN_A1, Status.ACTIVE, merchant=world.merchant_a1),
        SN_B: make_terminal(world, SN_B, Status.ACTIVE, merchant=world.merchant_b),
    }


@pytest.fixture
def login(world):
    """login("agent_a") -> a test client signed in as that persona (as after the password and the code,
    without the fresh step-up the code gives: tests of step-up ask for it)."""

    def make(name: str, **kwargs) -> Client:
        return sign_in(Client(**kwargs), world.user(name))

    return make
