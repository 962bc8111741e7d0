"""/terminals: what a caller reads and what the transitions return."""

from __future__ import annotations

from datetime import date

from posfleet.api.tests.helpers import SN_A, SN_A1, SN_B, SN_STOCK, assert_problem, trace
from posfleet.fleet.models import Terminal, TerminalModel
from posfleet.fleet.services import NewTerminal, terminals_register_batch
from posfleet.testing.personas import SYSTEM


def test_a_terminal_as_its_merchant_sees_it(fleet, api_as):
    terminal = Terminal.objects.get(sn=SN_A)
    body = api_as("merchant_a").get(f"/terminals/{SN_A}").json()
    assert body == {
        "sn": SN_A,
        "tid": terminal.tid,
        "status": "active",
        "status_label": "active",
        "status_reason": "",
        "status_changed_at": body["status_changed_at"],
        "model": "pax-a920",
        "merchant": "100000000000001",
        "agent": "AG-A",
        "store": None,
        "sim_iccid": "",
        "service_expires_on": None,
        "firmware_version": "",
        "last_heartbeat_at": None,
        "connectivity": "never",
        "registered_at": body["registered_at"],
        "allowed_actions": ["deactivate", "report_lost"],
    }
    assert len(terminal.tid) == 8
    assert body["status_changed_at"].endswith("Z")
    assert api_as("admin").get(f"/terminals/{SN_A}").json()["allowed_actions"] == [
        "suspend",
        "deactivate",
        "report_lost",
    ]
    assert api_as("reviewer").get(f"/terminals/{SN_A}").json()["allowed_actions"] == []


def test_filters_combine(world, fleet, api_as):
    other = TerminalModel.objects.create(code="nl-n910", maker="Newland", name="N910", kind="smart")
    terminals_register_batch(
        actor=SYSTEM,
        batch="B-FILTERS",
        terminals=[
            NewTerminal(sn="SN-F-0001", model_id=other.pk, service_expires_on=date(2031, 3, 1)),
            NewTerminal(sn="SN-F-0002", model_id=other.pk, service_expires_on=date(2031, 6, 1)),
        ],
    )
    Terminal.objects.filter(sn=SN_A).update(service_expires_on=date(2031, 4, 1))
    api = api_as("admin")

    def sns(**params):
        response = api.get("/terminals", params)
        assert response.status_code == 200, response.content
        return [t["sn"] for t in response.json()["items"]]

    assert sns(status=["in_stock"]) == ["SN-F-0001", "SN-F-0002", SN_STOCK]
    assert sns(status=["in_stock", "active"]) == [SN_A, SN_A1, SN_B, "SN-F-0001", "SN-F-0002", SN_STOCK]
    assert sns(model="nl-n910") == ["SN-F-0001", "SN-F-0002"]
    assert sns(agent="AG-A") == [SN_A]
    assert sns(merchant="100000000000002") == [SN_B]
    assert sns(sim_expires_from="2031-03-15") == [SN_A, "SN-F-0002"]
    assert sns(sim_expires_from="2031-03-01", sim_expires_to="2031-04-01") == [SN_A, "SN-F-0001"]
    assert sns(q="sn-f-000") == ["SN-F-0001", "SN-F-0002"]  # the start of an SN, in any case
    assert sns(q="f-000") == ["SN-F-0001", "SN-F-0002"]  # three characters or more: anywhere
    assert sns(q="f-") == []  # one or two: only the start of an SN or TID
    tid = Terminal.objects.get(sn=SN_B).tid
    assert sns(q=tid) == [SN_B]
    assert sns(status=["active"], agent="AG-A1") == [SN_A1]
    # Filters never widen the caller's scope.
    assert [t["sn"] for t in api_as("agent_b").get("/terminals", {"agent": "AG-A"}).json()["items"]] == []
    body = assert_problem(api.get("/terminals", {"status": "lost"}), 422, "validation_error")
    assert [e["field"] for e in body["errors"]] == ["status.0"]
    assert_problem(api.get("/terminals", {"sim_expires_from": "soon"}), 422, "validation_error")


def test_the_timeline_includes_the_import_of_the_batch(world, api_as):
    terminals_register_batch(
        actor=SYSTEM, batch="B-2031-01", terminals=[NewTerminal(sn="SN-I-0001", model_id=world.model.pk)]
    )
    api = api_as("warehouse")
    allocated = api.post(
        "/terminals/SN-I-0001/transitions", {"action": "allocate", "params": {"agent_code": "AG-B"}}
    )
    assert (allocated.json()["status"], allocated.json()["agent"]) == ("allocated", "AG-B")
    events = api.get("/terminals/SN-I-0001/events").json()
    assert [(e["event_type"], e["subject_type"], e["subject_id"]) for e in events["items"]] == [
        ("terminals.imported", "import_batch", "B-2031-01"),
        ("terminal.allocated", "terminal", "SN-I-0001"),
    ]
    assert events["items"][1]["actor_kind"] == "token"
    assert events["items"][1]["before"]["status"] == "in_stock"
    assert events["items"][1]["after"] == {
        "status": "allocated",
        "agent": "AG-B",
        "merchant": None,
        "store": None,
        "tid": None,
    }
    assert events["next_cursor"] is None


def test_the_life_of_a_terminal_over_the_api(world, api_as, clock):
    warehouse, agent, merchant = api_as("warehouse"), api_as("agent_a"), api_as("merchant_a")
    terminals_register_batch(
        actor=SYSTEM, batch="B-LIFE", terminals=[NewTerminal(sn="SN-L-0001", model_id=world.model.pk)]
    )
    path = "/terminals/SN-L-0001/transitions"
    assert (
        warehouse.post(path, {"action": "allocate", "params": {"agent_code": "AG-A"}}).json()["status"]
        == "allocated"
    )
    shipped = warehouse.post(path, {"action": "ship", "params": {"carrier": "SF", "tracking_no": "SF123"}})
    assert shipped.json()["status"] == "shipped"
    bound = agent.post(
        path,
        {
            "action": "bind",
            "params": {"merchant_mid": "100000000000001", "store_code": "S1", "tid": "A1B2C3D4"},
        },
    ).json()
    assert (bound["status"], bound["merchant"], bound["store"], bound["tid"]) == (
        "bound",
        "100000000000001",
        "S1",
        "A1B2C3D4",
    )
    assert agent.post(path, {"action": "activate"}).json()["status"] == "active"
    deactivated = merchant.post(
        path, {"action": "deactivate", "reason": "other", "note": "closing the shop"}, totp=clock.code()
    ).json()
    assert (deactivated["status"], deactivated["status_reason"]) == ("deactivated", "other")
    assert deactivated["allowed_actions"] == ["reactivate", "report_lost"]
    assert merchant.post(path, {"action": "reactivate"}).json()["status"] == "active"
    events = merchant.get("/terminals/SN-L-0001/events").json()["items"]
    assert [e["event_type"] for e in events] == [
        "terminals.imported",
        "terminal.allocated",
        "terminal.shipped",
        "terminal.bound",
        "terminal.activated",
        "terminal.deactivated",
        "terminal.reactivated",
    ]
    assert events[5]["note"] == "closing the shop"


def test_bulk_limits_come_from_the_service(fleet, api_as, settings):
    api = api_as("admin")
    before = [trace(sn) for sn in (SN_A, SN_A1, SN_B)]
    body = assert_problem(
        api.post("/terminals/bulk-transitions", {"sns": [], "action": "suspend"}), 422, "validation_error"
    )
    assert body["field"] == "sns"
    assert [trace(sn) for sn in (SN_A, SN_A1, SN_B)] == before
    settings.POSFLEET = {**settings.POSFLEET, "BULK_MAX_ITEMS": 2}
    body = assert_problem(
        api.post(
            "/terminals/bulk-transitions", {"sns": [SN_A, SN_A1, SN_B], "action": "suspend", "reason": "risk"}
        ),
        422,
        "validation_error",
    )
    assert body["detail"] == "At most 2 terminals at a time."
    assert Terminal.objects.get(sn=SN_A).status == "active"
    assert [trace(sn) for sn in (SN_A, SN_A1, SN_B)] == before  # not one of them was suspended


def test_bulk_reports_duplicates_and_refusals_per_item(fleet, api_as):
    response = api_as("admin").post(
        "/terminals/bulk-transitions",
        {"sns": [SN_A, "sn-a-0001", SN_STOCK, "SN-NOPE-01"], "action": "suspend", "reason": "risk"},
    )
    assert response.status_code == 200
    assert [(r["sn"], r["ok"], r["status"], r["code"]) for r in response.json()["results"]] == [
        (SN_A, True, "suspended", None),
        (SN_A, False, None, "duplicate"),
        (SN_STOCK, False, None, "transition_not_allowed"),
        ("SN-NOPE-01", False, None, "not_found"),
    ]
    assert (response.json()["succeeded"], response.json()["failed"]) == (1, 3)
