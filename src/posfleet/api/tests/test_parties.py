"""Merchants, agents, stores: scoped reads, and personal contact data masked for whoever does not
need it (reviewer, warehouse) while admin, the party itself and its agents see it."""

from __future__ import annotations

import pytest

from posfleet.parties.models import Agent, Merchant

MID_A, MID_A1 = "100000000000001", "100000000000003"
FULL = {"contact_name": "张三丰", "contact_phone": "13812345678", "contact_email": "zhang@example.com"}
MASKED = {"contact_name": "张**", "contact_phone": "138****5678", "contact_email": "z***@example.com"}


@pytest.fixture
def contacts(world):
    Merchant.objects.filter(mid__in=[MID_A, MID_A1]).update(**FULL)
    Agent.objects.filter(code__in=["AG-A", "AG-A1"]).update(contact_name="李四", contact_phone="13900001111")


def _contact(body: dict) -> dict:
    return {k: body[k] for k in ("contact_name", "contact_phone", "contact_email")}


@pytest.mark.parametrize(
    ("persona", "mid", "shown"),
    [
        ("admin", MID_A, True),
        ("merchant_a", MID_A, True),
        ("agent_a", MID_A, True),
        ("agent_a", MID_A1, True),  # its sub-agent's merchant
        ("agent_a1", MID_A1, True),
        ("reviewer", MID_A, False),
        ("warehouse", MID_A, False),
    ],
)
def test_merchant_contact_is_masked_unless_needed(contacts, api_as, persona, mid, shown):
    body = api_as(persona).get(f"/merchants/{mid}").json()
    assert _contact(body) == (FULL if shown else MASKED)
    assert body["contact_masked"] is not shown
    listed = next(m for m in api_as(persona).get("/merchants").json()["items"] if m["mid"] == mid)
    assert _contact(listed) == _contact(body)


@pytest.mark.parametrize(
    ("persona", "code", "shown"),
    [
        ("admin", "AG-A", True),
        ("agent_a", "AG-A", True),
        ("agent_a", "AG-A1", True),
        ("agent_a1", "AG-A1", True),
        ("reviewer", "AG-A", False),
        ("warehouse", "AG-A1", False),
    ],
)
def test_agent_contact_is_masked_unless_needed(contacts, api_as, persona, code, shown):
    body = api_as(persona).get(f"/agents/{code}").json()
    expected = ("李四", "13900001111") if shown else ("李*", "139****1111")
    assert (body["contact_name"], body["contact_phone"], body["contact_masked"]) == (*expected, not shown)


def test_masked_data_never_reaches_errors(contacts, api_as):
    response = api_as("reviewer").get("/merchants/100000000000009")
    assert response.status_code == 404
    for value in FULL.values():
        assert value not in response.content.decode()


def test_agent_hierarchy_is_shown(world, api_as):
    agents = {a["code"]: a for a in api_as("admin").get("/agents").json()["items"]}
    assert {code: (a["parent"], a["level"]) for code, a in agents.items()} == {
        "AG-A": (None, 1),
        "AG-A1": ("AG-A", 2),
        "AG-B": (None, 1),
    }


def test_a_merchant_reads_its_stores_and_its_timeline(world, api_as):
    api = api_as("merchant_a")
    merchant = api.get(f"/merchants/{MID_A}").json()
    assert (
        merchant["name"],
        merchant["legal_name"],
        merchant["kind"],
        merchant["mcc"],
        merchant["agent"],
    ) == (
        "Shop A",
        "Shop A Ltd",
        "enterprise",
        "5411",
        "AG-A",
    )
    stores = api.get(f"/merchants/{MID_A}/stores").json()
    assert stores == {
        "items": [{"merchant": MID_A, "code": "S1", "name": "Shop A main store", "city": "", "address": ""}],
        "next_cursor": None,
    }
    events = api.get(f"/merchants/{MID_A}/events").json()["items"]
    assert [(e["event_type"], e["subject_id"]) for e in events] == [
        ("merchant.created", MID_A),
        ("store.created", f"{MID_A}/S1"),
    ]
