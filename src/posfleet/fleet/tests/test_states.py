"""The transition table itself: reachability, final states, one target per command, the diagram."""

from __future__ import annotations

import pytest

from posfleet.fleet.models import Terminal
from posfleet.fleet.states import (
    FINAL,
    INITIAL,
    SPECS,
    TRANSITIONS,
    Command,
    Status,
    commands_from,
    next_state,
    target_of,
)


def test_every_state_is_reachable_from_in_stock():
    reached, frontier = {INITIAL}, [INITIAL]
    while frontier:
        state = frontier.pop()
        for (source, _command), target in TRANSITIONS.items():
            if source == state and target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(Status)


def test_final_states_have_no_exit_and_all_others_have_one():
    for state in Status:
        if state in FINAL:
            assert commands_from(state) == [], state
        else:
            assert commands_from(state), f"{state} is a dead end but not final"


def test_every_command_is_used_and_leads_to_one_state():
    assert {command for (_s, command) in TRANSITIONS} == set(Command)
    for command in Command:
        target_of(command)  # asserts a single target
    assert set(SPECS) == set(Command)


def test_only_active_comes_from_activate_resume_reactivate():
    into_active = {command for (_s, command), target in TRANSITIONS.items() if target == Status.ACTIVE}
    assert into_active == {Command.ACTIVATE, Command.RESUME, Command.REACTIVATE}


def test_destructive_commands_need_step_up():
    assert {c for c, spec in SPECS.items() if spec.step_up} == {
        Command.DEACTIVATE,
        Command.DEREGISTER,
        Command.SCRAP,
        Command.REPORT_LOST,
    }


# The terminal life as DOMAIN.md draws it, written out by hand (not derived from TRANSITIONS), so that a
# wrong edit of the table in states.py fails here: (state, command) -> state; every other pair is refused.
EXPECTED = {
    ("in_stock", "allocate"): "allocated",
    ("allocated", "pull_back"): "in_stock",
    ("allocated", "ship"): "shipped",
    ("shipped", "bind"): "bound",
    ("bound", "activate"): "active",
    ("active", "suspend"): "suspended",
    ("suspended", "resume"): "active",
    ("active", "deactivate"): "deactivated",
    ("suspended", "deactivate"): "deactivated",
    ("deactivated", "reactivate"): "active",
    ("deactivated", "deregister"): "deregistered",
    ("deregistered", "receive_return"): "returned",
    ("returned", "refurbish"): "in_stock",
    ("returned", "scrap"): "scrapped",
    ("in_stock", "report_lost"): "blocked",
    ("allocated", "report_lost"): "blocked",
    ("shipped", "report_lost"): "blocked",
    ("bound", "report_lost"): "blocked",
    ("active", "report_lost"): "blocked",
    ("suspended", "report_lost"): "blocked",
    ("deactivated", "report_lost"): "blocked",
    ("deregistered", "report_lost"): "blocked",
}
STATES = [
    "in_stock",
    "allocated",
    "shipped",
    "bound",
    "active",
    "suspended",
    "deactivated",
    "deregistered",
    "returned",
    "scrapped",
    "blocked",
]
COMMANDS = [
    "allocate",
    "pull_back",
    "ship",
    "bind",
    "activate",
    "suspend",
    "resume",
    "deactivate",
    "reactivate",
    "deregister",
    "receive_return",
    "refurbish",
    "scrap",
    "report_lost",
]
# A sample of the refused pairs, each a mistake someone could make in the table.
REFUSED = [
    ("in_stock", "ship"),  # stock is allocated to an agent before it ships
    ("shipped", "activate"),  # bound (merchant, TID) before it takes payments
    ("active", "activate"),
    ("active", "reactivate"),  # reactivation undoes a deactivation, not a suspension
    ("suspended", "reactivate"),
    ("deactivated", "resume"),  # resume undoes a suspension, not a deactivation
    ("active", "deregister"),  # deactivated first
    ("suspended", "deregister"),
    ("deregistered", "reactivate"),  # closed for good
    ("deregistered", "refurbish"),  # received back first
    ("returned", "report_lost"),  # in the warehouse
    ("returned", "allocate"),  # refurbished into stock first
    ("scrapped", "refurbish"),  # final
    ("blocked", "reactivate"),  # final: never transacts again
    ("blocked", "report_lost"),
]


def test_the_states_and_commands_are_the_ones_written_out_here():
    assert [s.value for s in Status] == STATES
    assert [c.value for c in Command] == COMMANDS
    assert all(pair not in EXPECTED for pair in REFUSED)


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("command", COMMANDS)
def test_next_state_matches_the_hand_written_table(state, command):
    assert next_state(state, command) == EXPECTED.get((state, command))


@pytest.mark.parametrize(("state", "command"), REFUSED)
def test_refused_pairs_have_no_next_state(state, command):
    assert next_state(state, command) is None
    assert (Status(state), Command(command)) not in TRANSITIONS


def test_the_table_has_exactly_the_hand_written_pairs():
    assert {(s.value, c.value): t.value for (s, c), t in TRANSITIONS.items()} == EXPECTED


def test_unknown_names_are_refused_by_next_state():
    assert next_state("active", "explode") is None
    assert next_state("nowhere", "deactivate") is None


def test_fsm_methods_on_the_model_match_the_table():
    transitions = {}
    for t in Terminal._meta.get_field("status").get_all_transitions(Terminal):
        transitions[(t.source, t.name)] = t.target
    assert transitions == {(s.value, c.value): t.value for (s, c), t in TRANSITIONS.items()}


def test_the_committed_diagrams_are_current():
    from posfleet.ops.management.commands.statemachines import default_folder, documents

    assert {"terminal.md", "merchant.md"} <= set(documents())
    for name, text in documents().items():
        diagram = default_folder() / name
        assert diagram.exists(), f"run `make statemachines` to generate docs/state-machines/{name}"
        stale = f"docs/state-machines/{name} is stale: run `make statemachines`"
        assert diagram.read_text() == text, stale
