"""Cursor pages: every row that exists during the walk is seen exactly once, in key order, even
while terminals are registered between page fetches."""

from __future__ import annotations

import pytest

from posfleet.api.tests.helpers import assert_problem
from posfleet.fleet.services import NewTerminal, terminals_register_batch
from posfleet.testing.personas import SYSTEM


def _register(world, sns: list[str], batch: str = "B-PAGES") -> None:
    terminals_register_batch(
        actor=SYSTEM, batch=batch, terminals=[NewTerminal(sn=sn, model_id=world.model.pk) for sn in sns]
    )


def _walk(api, limit: int, between=None) -> list[str]:
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        page = api.get("/terminals", params).json()
        assert len(page["items"]) <= limit
        seen += [t["sn"] for t in page["items"]]
        cursor = page["next_cursor"]
        pages += 1
        if cursor is None:
            return seen
        if between is not None:
            between(pages, seen[-1])


def test_walking_all_pages_sees_each_terminal_once_in_order(world, api_as):
    sns = [f"SN-P-{n:04d}" for n in range(23)]
    _register(world, sns)
    assert _walk(api_as("admin"), limit=5) == sns
    assert _walk(api_as("admin"), limit=23) == sns
    assert _walk(api_as("admin"), limit=500) == sns


def test_no_gaps_and_no_duplicates_while_terminals_are_inserted(world, api_as):
    original = [f"SN-P-{n:04d}" for n in range(0, 60, 2)]  # even numbers
    _register(world, original)
    inserted_after_cursor: list[str] = []

    def insert(page: int, last_seen: str) -> None:
        last = int(last_seen.rsplit("-", 1)[1])
        behind, ahead = f"SN-P-{last - 1:04d}", f"SN-P-{last + 1:04d}"  # odd: new
        _register(world, [behind, ahead], batch=f"B-{page}")
        inserted_after_cursor.append(ahead)

    seen = _walk(api_as("admin"), limit=4, between=insert)
    assert len(seen) == len(set(seen))  # no duplicates
    assert seen == sorted(seen)
    assert set(original) <= set(seen)  # no gaps: every terminal that was there is seen
    assert set(inserted_after_cursor) <= set(seen)  # rows inserted ahead of the cursor show up
    assert len(seen) == len(original) + len(inserted_after_cursor)  # rows inserted behind it do not


def test_pages_keep_the_filters(world, api_as):
    _register(world, [f"SN-Q-{n:04d}" for n in range(7)] + [f"SN-R-{n:04d}" for n in range(7)])
    first = api_as("admin").get("/terminals", {"q": "SN-Q", "limit": 3}).json()
    second = (
        api_as("admin").get("/terminals", {"q": "SN-Q", "limit": 3, "cursor": first["next_cursor"]}).json()
    )
    third = (
        api_as("admin").get("/terminals", {"q": "SN-Q", "limit": 3, "cursor": second["next_cursor"]}).json()
    )
    assert [t["sn"] for t in first["items"] + second["items"] + third["items"]] == [
        f"SN-Q-{n:04d}" for n in range(7)
    ]
    assert third["next_cursor"] is None


@pytest.mark.parametrize("cursor", ["garbage", "eyJ4IjoxfQ:1abc:def", ""])
def test_a_bad_cursor_is_422(world, api_as, cursor):
    response = api_as("admin").get("/terminals", {"cursor": cursor} if cursor else {"cursor": " "})
    body = assert_problem(response, 422, "validation_error")
    assert body["field"] == "cursor"


def test_a_cursor_of_another_list_is_422(world, api_as):
    api = api_as("admin")
    cursor = api.get("/agents", {"limit": 1}).json()["next_cursor"]
    assert cursor is not None
    body = assert_problem(api.get("/terminals", {"cursor": cursor}), 422, "validation_error")
    assert body["field"] == "cursor"


@pytest.mark.parametrize("limit", [0, 501, "many"])
def test_limit_out_of_bounds_is_422(world, api_as, limit):
    body = assert_problem(api_as("admin").get("/terminals", {"limit": limit}), 422, "validation_error")
    assert [e["field"] for e in body["errors"]] == ["limit"]


def test_other_lists_page_by_their_unique_key(world, api_as):
    api = api_as("admin")
    first = api.get("/merchants", {"limit": 2}).json()
    rest = api.get("/merchants", {"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [m["mid"] for m in first["items"] + rest["items"]] == [
        "100000000000001",
        "100000000000002",
        "100000000000003",
    ]
    assert rest["next_cursor"] is None
    agents = api.get("/agents", {"limit": 2}).json()
    more = api.get("/agents", {"limit": 2, "cursor": agents["next_cursor"]}).json()
    assert [a["code"] for a in agents["items"] + more["items"]] == ["AG-A", "AG-A1", "AG-B"]
