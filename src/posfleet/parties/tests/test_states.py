"""The merchant's life as data (parties/states.py): the table as DOMAIN.md describes it, written out by
hand so that a wrong edit of the table fails here, and the table's own shape."""

from __future__ import annotations

import pytest

from posfleet.parties.models import Merchant
from posfleet.parties.states import (
    FINAL,
    INITIAL,
    SPECS,
    TRANSITIONS,
    ClosureReason,
    Command,
    MerchantStatus,
    SuspensionReason,
    commands_from,
    next_state,
)

EXPECTED = {
    ("active", "suspend"): "suspended",
    ("suspended", "resume"): "active",
    ("active", "close"): "closed",
    ("suspended", "close"): "closed",
}
STATES = ["active", "suspended", "closed"]
COMMANDS = ["suspend", "resume", "close"]


def test_the_table_has_exactly_the_hand_written_pairs():
    assert {(s.value, c.value): t.value for (s, c), t in TRANSITIONS.items()} == EXPECTED
    assert [s.value for s in MerchantStatus] == STATES
    assert [c.value for c in Command] == COMMANDS


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("command", COMMANDS)
def test_next_state_follows_the_hand_written_table(state, command):
    assert next_state(state, command) == EXPECTED.get((state, command))


def test_unknown_names_are_refused():
    assert next_state("active", "reopen") is None  # a closed merchant re-applies; nothing reopens it
    assert next_state("dormant", "suspend") is None


def test_every_status_is_reachable_and_closed_is_final():
    reached, frontier = {INITIAL}, [INITIAL]
    while frontier:
        state = frontier.pop()
        for command in commands_from(state):
            target = TRANSITIONS[(state, command)]
            if target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(MerchantStatus)
    assert {"closed"} == {s.value for s in FINAL}
    assert all(commands_from(state) == [] for state in FINAL)
    assert all(commands_from(state) for state in set(MerchantStatus) - FINAL)


def test_reasons_and_step_up():
    assert set(SPECS) == set(Command)
    assert {c.value: (SPECS[c].reasons, SPECS[c].step_up) for c in Command} == {
        "suspend": (SuspensionReason, False),
        "resume": (None, False),
        "close": (ClosureReason, True),  # destructive
    }


def test_the_model_uses_the_table_statuses():
    assert Merchant.Status is MerchantStatus
    assert Merchant._meta.get_field("status").choices == MerchantStatus.choices
    assert Merchant._meta.get_field("status").default == MerchantStatus.ACTIVE
