"""The device list's search box: three characters or more anywhere in an SN or TID (a trigram index on
each engine, fleet/migrations/0010), one or two at its start (an index range), whatever the case, and
only within what the user may see."""

from __future__ import annotations

import pytest

from posfleet.fleet.models import Terminal
from posfleet.fleet.selectors import TerminalFilters, search_terminals
from posfleet.fleet.states import Status
from posfleet.testing.personas import make_terminal

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet(world):
    make_terminal(world, "AB-0001", Status.ACTIVE, merchant=world.merchant_a)
    make_terminal(world, "AB-0002", Status.ACTIVE, merchant=world.merchant_b)
    make_terminal(world, "AB0003", Status.IN_STOCK)
    make_terminal(world, "ABC-001", Status.IN_STOCK)
    make_terminal(world, "XAB-001", Status.IN_STOCK)
    make_terminal(world, "ZZ-0009", Status.ACTIVE, merchant=world.merchant_a)
    Terminal.objects.filter(sn="ZZ-0009").update(tid="AB120009")
    Terminal.objects.filter(sn="AB-0001").update(tid="77000001")
    return world


def found(user, q: str) -> list[str]:
    return list(search_terminals(user, TerminalFilters(q=q)).values_list("sn", flat=True))


def test_one_or_two_characters_are_the_start_of_an_sn_or_a_tid(fleet):
    admin = fleet.user("admin")
    assert found(admin, " Ab ") == ["AB-0001", "AB-0002", "AB0003", "ABC-001", "ZZ-0009"]  # ZZ by its TID
    assert found(admin, "b") == []  # not "XAB-001": one or two characters match only at the start
    assert found(admin, "x") == ["XAB-001"]


def test_three_or_more_anywhere_in_an_sn_or_a_tid_in_any_case(fleet):
    admin = fleet.user("admin")
    assert found(admin, "ab-") == ["AB-0001", "AB-0002", "XAB-001"]
    assert found(admin, "B-000") == ["AB-0001", "AB-0002"]
    assert found(admin, "0009") == ["ZZ-0009"]  # the last digits on the device's label (and its TID's)
    assert found(admin, "120") == ["ZZ-0009"]  # inside its TID AB120009 only
    assert found(admin, "7700") == ["AB-0001"]
    assert found(admin, "AB-0001") == ["AB-0001"]
    assert found(admin, "-001") == ["ABC-001", "XAB-001"]


def test_a_wildcard_or_a_quote_is_plain_text(fleet):
    admin = fleet.user("admin")
    assert found(admin, "AB_") == []  # not LIKE's "any one character"
    assert found(admin, "%") == []
    assert found(admin, "%%%") == []
    assert found(admin, "A%B") == []
    assert found(admin, '"AB') == []  # not an FTS5 phrase's quote
    assert found(admin, "AB OR ZZ") == []  # nor its operators
    assert found(admin, "AB-0001X") == []


def test_the_index_follows_every_change_of_an_sn_or_a_tid(fleet):
    """Written by raw UPDATEs and DELETEs (no service, no signal): the trigram index still answers."""
    admin = fleet.user("admin")
    Terminal.objects.filter(sn="XAB-001").update(sn="XYZ-777")
    assert found(admin, "AB-001") == []
    assert found(admin, "YZ-77") == ["XYZ-777"]
    Terminal.objects.filter(sn="ZZ-0009").update(tid="55667788")
    assert found(admin, "B12000") == []
    assert found(admin, "6677") == ["ZZ-0009"]
    Terminal.objects.filter(sn="XYZ-777").delete()
    assert found(admin, "YZ-77") == []


def test_the_search_stays_in_the_users_scope(fleet):
    assert found(fleet.user("agent_a"), "AB") == ["AB-0001", "ZZ-0009"]
    assert found(fleet.user("agent_b"), "AB") == ["AB-0002"]
    assert found(fleet.user("merchant_b"), "AB-000") == ["AB-0002"]
    assert found(fleet.user("agent_b"), "000") == ["AB-0002"]  # anywhere, still only its own


def test_a_search_keeps_the_lists_order(fleet):
    """A search orders its matches as the whole list orders them (it sorts through an expression that
    no index gives, ``search_order``: the same order)."""
    admin = fleet.user("admin")
    matching = {"AB-0001", "AB-0002", "AB0003", "ABC-001", "ZZ-0009"}
    for sort in ("sn", "-sn", "tid", "-tid", "status", "-changed"):
        everything = search_terminals(admin, TerminalFilters(), sort).values_list("sn", flat=True)
        searched = search_terminals(admin, TerminalFilters(q="AB"), sort).values_list("sn", flat=True)
        assert list(searched) == [sn for sn in everything if sn in matching], sort
    assert list(search_terminals(admin, TerminalFilters(q="AB"), "-sn").values_list("sn", flat=True)) == [
        "ZZ-0009",
        "ABC-001",
        "AB0003",
        "AB-0002",
        "AB-0001",
    ]
