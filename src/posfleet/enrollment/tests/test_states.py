"""An application's life as data (enrollment/states.py): the table is whole, and the console's progress
picture and buttons and the API's actions are read from it."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.test import Client
from django.utils import translation

from posfleet.enrollment import selectors, states
from posfleet.enrollment.states import ApplicationCommand as C
from posfleet.enrollment.states import ApplicationStatus as S
from posfleet.platform.clock import now
from posfleet.platform.context import Actor
from posfleet.testing.applications import walk
from posfleet.testing.sessions import sign_in

# Written out by hand, not derived from the table: a wrong edit of TRANSITIONS must fail here.
EXPECTED = {
    (None, C.SUBMIT): S.SUBMITTED,
    (S.SUBMITTED, C.REQUEST_INFO): S.NEEDS_INFO,
    (S.NEEDS_INFO, C.RESPOND): S.SUBMITTED,
    (S.SUBMITTED, C.APPROVE): S.APPROVED,
    (S.SUBMITTED, C.REJECT): S.REJECTED,
    (S.APPROVED, C.ALLOCATE): S.ALLOCATED,
    (S.ALLOCATED, C.SHIP): S.SHIPPED,
    (S.SHIPPED, C.DELIVER): S.DELIVERED,
    (S.DELIVERED, C.INSTALL): S.DELIVERED,
    (S.DELIVERED, C.TEST): S.DELIVERED,
    (S.DELIVERED, C.COMPLETE): S.COMPLETED,
}


def test_the_table_is_the_one_written_down():
    assert states.TRANSITIONS == EXPECTED
    for (status, command), target in EXPECTED.items():
        assert states.next_state(status, command) == target
    assert states.next_state(S.REJECTED, C.APPROVE) is None
    assert states.next_state(S.APPROVED, C.SHIP) is None
    assert states.next_state("nonsense", C.SHIP) is None


def test_every_status_is_reachable_and_only_final_ones_have_no_exit():
    reached, frontier = {S.SUBMITTED}, [S.SUBMITTED]
    while frontier:
        status = frontier.pop()
        for command in states.commands_from(status):
            target = states.next_state(status, command)
            if target is not None and target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(S)
    assert {s for s in S if not states.commands_from(s)} == set(states.FINAL) == {S.REJECTED, S.COMPLETED}


def test_every_command_a_person_takes_has_its_permission_and_the_groups_cover_every_status():
    assert set(states.PERMISSIONS) == set(C) - states.AUTOMATIC
    assert set(states.DECISIONS.values()) == states.MAKER_CHECKER
    groups = list(states.GROUPS.values())
    assert sum(len(g) for g in groups) == len(S) == len(set().union(*groups))
    assert set(states.PROGRESS) == set(S)


def test_the_progress_picture():
    assert [state for _k, _l, state in states.progress(S.SHIPPED)] == [
        "done", "done", "done", "done", "done", "current", "todo", "todo",
    ]  # fmt: skip
    assert [state for _k, _l, state in states.progress(S.REJECTED)] == [
        "done", "failed", "todo", "todo", "todo", "todo", "todo", "todo",
    ]  # fmt: skip
    assert {state for _k, _l, state in states.progress(S.COMPLETED)} == {"done"}


def test_overdue_means_waiting_for_review_past_the_clock():
    at = datetime(2026, 12, 6, 12, 0)
    due = at - timedelta(minutes=1)
    assert states.review_overdue(S.SUBMITTED, due, at)
    assert not states.review_overdue(S.SUBMITTED, at, at)
    assert not states.review_overdue(S.NEEDS_INFO, due, at)
    assert not states.review_overdue(S.SUBMITTED, None, at)


@pytest.mark.django_db
def test_actions_follow_status_permission_and_maker_checker(world, actor_of):
    application = walk(world, actor_of, "submitted")  # by agent_a, waiting for review
    as_ = {name: actor_of(world.user(name)) for name in ("admin", "reviewer", "agent_a", "merchant_a")}
    assert selectors.actions_for(as_["reviewer"], application) == [C.REQUEST_INFO, C.APPROVE, C.REJECT]
    assert selectors.actions_for(as_["admin"], application) == [C.REQUEST_INFO, C.APPROVE, C.REJECT]
    assert selectors.actions_for(as_["agent_a"], application) == []  # no deciding on one's own
    assert selectors.actions_for(Actor.job("sweep"), application) == [C.REQUEST_INFO, C.APPROVE, C.REJECT]
    read_only = Actor(kind="token", user=world.user("admin"), read_only=True)
    assert selectors.actions_for(read_only, application) == []


@pytest.mark.django_db
def test_the_console_and_the_api_offer_the_same_actions(world, actor_of):
    application = walk(world, actor_of, "submitted")
    reviewer = world.user("reviewer")  # reads English
    with translation.override("en"):
        view = selectors.application_view(actor_of(reviewer), application)
    client = sign_in(Client(), reviewer)
    page = client.get(f"/console/applications/{application.number}/").content.decode()
    assert 'data-testid="review-form"' in page
    api = client.get(f"/api/v1/applications/{application.number}").json()
    assert api["actions"] == [c.value for c in view.actions] == ["request_info", "approve", "reject"]
    assert [s["state"] for s in api["steps"]] == [s.state for s in view.steps]
    assert api["next_step"] == view.next_step
    assert api["review_overdue"] is view.overdue is (application.review_due_at < now())
