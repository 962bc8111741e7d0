"""Every list filtered by a range of days (or months) refuses a range that ends before it starts: 422,
naming the start parameter, instead of an empty page that looks like "nothing happened"."""

from __future__ import annotations

import re

import pytest

from posfleet.api.tests.helpers import assert_problem
from posfleet.api.urls import api
from posfleet.billing.defaults import ensure_standard_plan
from posfleet.billing.statements import Month
from posfleet.platform.clock import today

pytestmark = pytest.mark.django_db

# (path, start parameter, end parameter, kind): every range filter of the API.
RANGES = [
    ("/terminals", "sim_expires_from", "sim_expires_to", "day"),
    ("/transactions", "date_from", "date_to", "day"),
    ("/settlements", "date_from", "date_to", "day"),
    ("/ledger/journals", "date_from", "date_to", "day"),
    ("/merchants/{mid}/comparison", "from", "to", "month"),
]

_START = re.compile(r"^(.*_)?(from|since|after|start|begin)$")


def test_the_table_above_lists_every_range_filter_of_the_api():
    """A new list with a from/to filter must be added to RANGES (and so be tested)."""
    found = set()
    for path, operations in api.get_openapi_schema()["paths"].items():
        for operation in operations.values():
            names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
            for name in names:
                if _START.match(name):
                    found.add((path.removeprefix("/api/v1"), name))
    assert found == {(path, start) for path, start, _end, _kind in RANGES}


def values(kind: str) -> tuple[str, str]:
    """An earlier and a later value of the kind, both in the past."""
    if kind == "day":
        return "2026-03-01", "2026-03-02"
    last = Month.of(today()).plus(-2)
    return str(last.plus(-1)), str(last)


@pytest.mark.parametrize(("path", "start", "end", "kind"), RANGES)
def test_a_range_that_ends_before_it_starts_is_422(world, api_as, path, start, end, kind):
    ensure_standard_plan()
    client = api_as("admin")
    path = path.format(mid=world.merchant_a.mid)
    earlier, later = values(kind)
    body = assert_problem(client.get(path, {start: later, end: earlier}), 422, "validation_error")
    assert body["field"] == start
    assert body["detail"] == f"The start of the range ({later}) is after its end ({earlier})."
    # In order, equal, or open on one side: answered.
    for params in ({start: earlier, end: later}, {start: later, end: later}, {start: later}, {end: earlier}):
        answer = client.get(path, params)
        assert answer.status_code == 200, (params, answer.content)
