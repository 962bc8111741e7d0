"""The status groups are the words the rest of posfleet uses ("in service", "stopped", "closed"…), each
written once in fleet/states.py; every guard a command names is a function in fleet/guards.py."""

from __future__ import annotations

import inspect

from posfleet.fleet import guards
from posfleet.fleet.states import (
    CLOSABLE,
    CLOSED,
    FINAL,
    GROUPS,
    IN_SERVICE,
    IN_STOCK_GROUP,
    SPECS,
    STOPPED,
    TRANSACTING,
    WITH_MERCHANT,
    Status,
)

S = Status


def test_the_groups_say_what_the_domain_says():
    assert {S.ACTIVE} == TRANSACTING
    assert {S.BOUND, S.ACTIVE, S.SUSPENDED} == IN_SERVICE
    assert {S.SUSPENDED, S.DEACTIVATED} == STOPPED
    assert {S.BOUND, S.ACTIVE, S.SUSPENDED, S.DEACTIVATED} == WITH_MERCHANT
    assert {S.IN_STOCK, S.ALLOCATED} == IN_STOCK_GROUP
    assert {S.DEREGISTERED, S.RETURNED, S.SCRAPPED, S.BLOCKED} == CLOSED
    assert FINAL <= CLOSED


def test_stock_in_service_and_closed_do_not_overlap_and_leave_only_shipped_out():
    parts = [IN_STOCK_GROUP, WITH_MERCHANT, CLOSED]
    assert sum(len(p) for p in parts) == len(set().union(*parts))
    assert set(Status) - set().union(*parts) == {S.SHIPPED}  # on its way: no one's yet
    assert set(GROUPS.values()) == {IN_STOCK_GROUP, IN_SERVICE, STOPPED, WITH_MERCHANT, CLOSED}


def test_a_closable_terminal_is_with_its_merchant_and_has_transacted():
    assert CLOSABLE < WITH_MERCHANT
    assert CLOSABLE.isdisjoint({S.BOUND, S.SHIPPED})  # never activated: nothing to close yet


def test_every_named_guard_is_a_function_and_every_guard_is_named():
    named = {name for spec in SPECS.values() for name in spec.guards}
    assert named == set(guards.GUARDS)
    for name, function in guards.GUARDS.items():
        assert function.__name__ == name
        assert list(inspect.signature(function).parameters) == ["terminal", "change"]
