"""The closure tables: which steps may start when, and the case's moves."""

from __future__ import annotations

from posfleet.closure.states import (
    FINAL,
    SPEC,
    STEPS,
    CaseCommand,
    CaseStatus,
    StepName,
    all_finished,
    commands_from,
    next_state,
    runnable,
)


def test_a_new_case_starts_with_the_contract_only():
    states = {spec.name: "pending" for spec in STEPS}
    assert runnable(states) == [StepName.CONTRACT]


def test_independent_steps_run_side_by_side_and_the_refund_waits_for_both_branches():
    states = {spec.name: "pending" for spec in STEPS} | {"contract": "done"}
    assert runnable(states) == [StepName.UNBIND, StepName.SETTLE]
    states |= {"unbind": "done", "settle": "waiting"}
    assert runnable(states) == []  # the backup waits for the settlement, the wipe for the backup
    states |= {"settle": "done", "backup": "done", "wipe": "skipped", "return": "done", "inspect": "done"}
    assert runnable(states) == [StepName.REFUND]
    assert not all_finished(states)
    assert all_finished(states | {"refund": "done", "certificate": "done"})


def test_every_step_comes_after_steps_listed_before_it():
    seen: set[str] = set()
    for spec in STEPS:
        assert set(spec.after) <= seen, spec.name
        seen.add(spec.name)
    assert set(SPEC) == set(StepName)


def test_the_case_moves():
    assert next_state(None, CaseCommand.REQUEST) == CaseStatus.REQUESTED
    assert next_state(CaseStatus.REQUESTED, CaseCommand.APPROVE) == CaseStatus.RUNNING
    assert next_state(CaseStatus.RUNNING, CaseCommand.WITHDRAW) is None  # too late once approved
    assert next_state(CaseStatus.COMPLETED, CaseCommand.APPROVE) is None
    assert next_state("nonsense", "approve") is None
    assert commands_from(CaseStatus.RUNNING) == []  # completing is the runner's, not a person's
    assert set(commands_from(CaseStatus.REQUESTED)) == {
        CaseCommand.WITHDRAW,
        CaseCommand.APPROVE,
        CaseCommand.REJECT,
    }
    for status in FINAL:
        assert commands_from(status) == []
