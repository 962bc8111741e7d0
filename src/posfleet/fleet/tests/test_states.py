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


@pytest.mark.parametrize("state", list(Status))
@pytest.mark.parametrize("command", list(Command))
def test_next_state_matches_the_table(state, command):
    assert next_state(state, command) == TRANSITIONS.get((state, command))


def test_unknown_names_are_refused_by_next_state():
    assert next_state("active", "explode") is None
    assert next_state("nowhere", "deactivate") is None


def test_fsm_methods_on_the_model_match_the_table():
    transitions = {}
    for t in Terminal._meta.get_field("status").get_all_transitions(Terminal):
        transitions[(t.source, t.name)] = t.target
    assert transitions == {(s.value, c.value): t.value for (s, c), t in TRANSITIONS.items()}


def test_the_committed_diagram_is_current():
    from posfleet.fleet.management.commands.statemachines import default_folder, terminal_document

    diagram = default_folder() / "terminal.md"
    assert diagram.exists(), "run `make statemachines` to generate docs/state-machines/terminal.md"
    stale = "docs/state-machines/terminal.md is stale: run `make statemachines`"
    assert diagram.read_text() == terminal_document(), stale
