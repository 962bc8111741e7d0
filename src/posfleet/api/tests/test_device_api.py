"""The device command channel over HTTP: the device's own side (/device/..., its credential only) and
the staff side (/terminals/{sn}/commands, /terminals/{sn}/device-credential), scoped, stepped up, with
a permission matrix, and the device simulator playing against a live server."""

from __future__ import annotations

import threading

import pytest
from django.test import Client

from posfleet.api.tests.helpers import (
    PERSONAS,
    SN_A,
    SN_A1,
    SN_B,
    assert_problem,
    new_events,
    trace,
)
from posfleet.audit.models import AuditEvent
from posfleet.audit.vocabulary import EventType
from posfleet.fleet.devices import simulator
from posfleet.fleet.models import DeviceCommand, DeviceCredential
from posfleet.fleet.services import device_command_send, device_credential_issue, device_credential_revoke
from posfleet.fleet.states import Status
from posfleet.platform.context import Actor
from posfleet.testing.personas import SYSTEM, make_terminal
from posfleet.testing.refusals import assert_nothing_recorded
from posfleet.testing.servers import free_port

CLOSURE = Actor.job("closure")


class Device:
    """A client of /api/v1/device/ with one device's credential (or a given Authorization header)."""

    def __init__(self, authorization: str | None) -> None:
        self.client = Client()
        self.headers = {"Accept-Language": "en"}
        if authorization is not None:
            self.headers["Authorization"] = authorization

    def get(self, path: str):
        return self.client.get("/api/v1/device" + path, headers=self.headers)

    def post(self, path: str, body: dict):
        return self.client.post(
            "/api/v1/device" + path, body, content_type="application/json", headers=self.headers
        )


def device_of(sn: str) -> tuple[Device, str, str]:
    """A device signed in with a fresh credential of terminal ``sn``: (client, key id, secret)."""
    credential, secret = device_credential_issue(actor=SYSTEM, sn=sn)
    return Device(f"Device {credential.key_id}:{secret}"), credential.key_id, secret


# ---------------------------------------------------------------------------------------------
# The device's side


def test_a_device_beats_fetches_and_answers(fleet, api_as, clock):
    device, _key, _secret = device_of(SN_A)
    command = device_command_send(actor=CLOSURE, sn=SN_A, kind="wipe", key="closure:1:wipe")

    beat = device.post("/heartbeat", {"firmware": "3.1.0", "location": {"lat": 31.2, "lon": 121.5}})
    assert beat.status_code == 200, beat.content
    assert (beat.json()["sn"], beat.json()["commands_waiting"]) == (SN_A, 1)

    fetched = device.get("/commands")
    assert fetched.status_code == 200
    (item,) = fetched.json()["items"]
    assert (item["id"], item["kind"], item["status"], item["payload"]) == (
        command.pk,
        "wipe",
        "delivered",
        {},
    )

    answer = device.post(f"/commands/{command.pk}/ack", {"ok": True, "result": {"wiped": True, "at": "now"}})
    assert answer.status_code == 200, answer.content
    assert answer.json()["status"] == "acknowledged"
    assert device.get("/commands").json()["items"] == []
    again = device.post(f"/commands/{command.pk}/ack", {"ok": False, "result": {}})
    assert (again.status_code, again.json()["status"]) == (200, "acknowledged")

    listed = api_as("admin").get(f"/terminals/{SN_A}/commands")
    assert listed.status_code == 200
    (row,) = listed.json()["items"]
    assert (row["id"], row["status"], row["key"], row["result"]) == (
        command.pk,
        "acknowledged",
        "closure:1:wipe",
        {"wiped": True, "at": "now"},
    )
    assert row["delivered_at"] is not None
    assert row["acknowledged_at"] is not None
    audit = AuditEvent.objects.filter(event_type=EventType.DEVICE_COMMAND_ACKNOWLEDGED).get()
    assert (audit.actor_kind, audit.actor_label, audit.source_ip) == ("system", f"device {SN_A}", "127.0.0.1")


@pytest.mark.parametrize(
    ("method", "path"), [("post", "/heartbeat"), ("get", "/commands"), ("post", "/commands/1/ack")]
)
def test_a_missing_wrong_or_revoked_credential_is_401(fleet, api_as, clock, method, path):
    device, key_id, secret = device_of(SN_A)
    device_command_send(actor=SYSTEM, sn=SN_A, kind="message", payload={"text": "hi"})
    body = {"ok": True, "result": {}}
    bearer = api_as("admin").headers["Authorization"]
    refused = [
        None,
        "",
        f"Device {key_id}",
        f"Device {key_id}:{secret}x",
        f"Device dk_nobody:{secret}",
        f"Bearer {secret}",
        bearer,  # an API token is no device's credential
        f"Device {key_id}:{secret}:{secret}",
    ]
    commands = list(DeviceCommand.objects.values())
    for authorization in refused:
        caller = Device(authorization)
        response = caller.get(path) if method == "get" else caller.post(path, body)
        problem = assert_problem(response, 401, "not_authenticated")
        assert secret not in response.content.decode()
        assert problem["detail"]
    device_credential_revoke(actor=SYSTEM, sn=SN_A, reason="compromised")
    response = device.get(path) if method == "get" else device.post(path, body)
    assert_problem(response, 401, "not_authenticated")
    assert list(DeviceCommand.objects.values()) == commands


def test_a_device_credential_opens_no_other_endpoint(fleet, clock):
    _device, key_id, secret = device_of(SN_A)
    response = Client().get(
        f"/api/v1/terminals/{SN_A}",
        headers={"Authorization": f"Device {key_id}:{secret}", "Accept-Language": "en"},
    )
    assert_problem(response, 401, "not_authenticated")
    assert secret not in response.content.decode()


def test_a_device_cannot_read_or_answer_another_devices_commands(fleet, clock):
    device_a, _key, _secret = device_of(SN_A)
    device_b, _key_b, _secret_b = device_of(SN_B)
    command = device_command_send(actor=SYSTEM, sn=SN_A, kind="wipe")
    assert device_b.get("/commands").json()["items"] == []
    command.refresh_from_db()
    assert command.status == "queued"
    device_a.get("/commands")
    command.refresh_from_db()
    with assert_nothing_recorded(command):
        assert_problem(device_b.post(f"/commands/{command.pk}/ack", {"ok": True}), 404, "not_found")
        assert_problem(device_b.post("/commands/999999/ack", {"ok": True}), 404, "not_found")


def test_bad_heartbeats_and_answers_are_422(fleet, clock):
    device, _key, _secret = device_of(SN_A)
    command = device_command_send(actor=SYSTEM, sn=SN_A, kind="unlock")
    before = trace(SN_A)
    assert_problem(device.post("/heartbeat", {"location": {"lat": 95, "lon": 0}}), 422, "validation_error")
    assert_problem(device.post("/heartbeat", {"firmware": "x" * 40}), 422, "validation_error")
    assert_problem(device.post(f"/commands/{command.pk}/ack", {"ok": True}), 409, "transition_not_allowed")
    assert trace(SN_A) == before


# ---------------------------------------------------------------------------------------------
# The staff side


def test_wipe_needs_step_up_and_without_it_nothing_is_recorded(fleet, api_as, world, clock):
    api = api_as("admin")
    terminal = fleet[SN_A]
    with assert_nothing_recorded(terminal, DeviceCommand.objects.all()):
        assert_problem(api.post(f"/terminals/{SN_A}/commands", {"kind": "wipe"}), 403, "step_up_required")
        assert_problem(api.post(f"/terminals/{SN_A}/commands", {"kind": "lock"}), 403, "step_up_required")
    seq = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    sent = api.post(f"/terminals/{SN_A}/commands", {"kind": "wipe", "key": "case-1"}, totp=clock.code())
    assert sent.status_code == 201, sent.content
    body = sent.json()
    assert (body["kind"], body["status"], body["key"]) == ("wipe", "queued", "case-1")
    assert body["sent_by"].startswith("admin via token ")
    assert [e[0] for e in new_events(seq)] == [EventType.STEP_UP_SUCCEEDED, EventType.DEVICE_COMMAND_SENT]
    # The same key again (a fresh code: a code works once) answers the same command, 200.
    clock.advance()
    again = api.post(f"/terminals/{SN_A}/commands", {"kind": "wipe", "key": "case-1"}, totp=clock.code())
    assert (again.status_code, again.json()["id"]) == (200, body["id"])
    assert DeviceCommand.objects.count() == 1
    clock.advance()
    other = api.post(f"/terminals/{SN_A}/commands", {"kind": "lock", "key": "case-1"}, totp=clock.code())
    assert_problem(other, 422, "idempotency_key_reused")


def test_message_and_unlock_need_no_step_up(fleet, api_as, clock):
    api = api_as("agent_a")
    sent = api.post(f"/terminals/{SN_A}/commands", {"kind": "message", "payload": {"text": "Closing at 6"}})
    assert (sent.status_code, sent.json()["payload"]) == (201, {"text": "Closing at 6"})
    assert api.post(f"/terminals/{SN_A}/commands", {"kind": "unlock"}).status_code == 201
    bad = api.post(f"/terminals/{SN_A}/commands", {"kind": "message", "payload": {"text": ""}})
    assert_problem(bad, 422, "validation_error")
    assert_problem(api.post(f"/terminals/{SN_A}/commands", {"kind": "reboot"}), 422, "validation_error")


def test_an_issued_credential_is_shown_once(fleet, api_as, clock):
    api = api_as("warehouse")
    issued = api.post(f"/terminals/{SN_A}/device-credential", {}, key="issue-1", totp=clock.code())
    assert issued.status_code == 201, issued.content
    body = issued.json()
    assert body["secret"]
    assert body["key_id"].startswith("dk_")
    replay = api.post(f"/terminals/{SN_A}/device-credential", {}, key="issue-1")
    assert replay.status_code == 201
    assert replay["Idempotent-Replayed"] == "true"
    assert (replay.json()["key_id"], replay.json()["secret"]) == (body["key_id"], None)
    device = Device(f"Device {body['key_id']}:{body['secret']}")
    assert device.get("/commands").status_code == 200
    clock.advance()
    revoked = api.post(
        f"/terminals/{SN_A}/device-credential/revoke", {"reason": "compromised"}, totp=clock.code()
    )
    assert revoked.status_code == 200, revoked.content
    assert (revoked.json()["revoked"], revoked.json()["credential"]["revoked_reason"]) == (
        True,
        "compromised",
    )
    assert_problem(device.get("/commands"), 401, "not_authenticated")
    clock.advance()
    none = api.post(
        f"/terminals/{SN_A}/device-credential/revoke", {"reason": "compromised"}, totp=clock.code()
    )
    assert none.json() == {"revoked": False, "credential": None}
    assert body["secret"] not in str(AuditEvent.objects.values_list("before", "after"))


def test_a_credential_needs_step_up(fleet, api_as, clock):
    with assert_nothing_recorded(fleet[SN_A], DeviceCredential.objects.all()):
        response = api_as("admin").post(f"/terminals/{SN_A}/device-credential", {})
        assert_problem(response, 403, "step_up_required")


# ---------------------------------------------------------------------------------------------
# Scope and who may do what, per endpoint

SEES = {
    "admin": {SN_A, SN_A1, SN_B},
    "reviewer": {SN_A, SN_A1, SN_B},
    "warehouse": {SN_A, SN_A1, SN_B},
    "agent_a": {SN_A, SN_A1},
    "agent_a1": {SN_A1},
    "agent_b": {SN_B},
    "merchant_a": {SN_A},
    "merchant_b": {SN_B},
}
# On SN_A (merchant A, agent A): message, wipe (with a code), issue a credential (with a code).
MAY = {
    "admin": ("201", "201", "201"),
    "reviewer": ("403", "403", "403"),
    "warehouse": ("201", "201", "201"),
    "agent_a": ("201", "403", "403"),
    "agent_a1": ("404", "404", "404"),
    "agent_b": ("404", "404", "404"),
    "merchant_a": ("201", "403", "403"),
    "merchant_b": ("404", "404", "404"),
}


@pytest.mark.parametrize("persona", PERSONAS)
def test_the_command_list_is_scoped(fleet, api_as, clock, persona):
    for sn in (SN_A, SN_A1, SN_B):
        device_command_send(actor=SYSTEM, sn=sn, kind="message", payload={"text": sn})
    api = api_as(persona)
    for sn in (SN_A, SN_A1, SN_B):
        response = api.get(f"/terminals/{sn}/commands")
        if sn in SEES[persona]:
            assert response.status_code == 200
            assert [c["payload"]["text"] for c in response.json()["items"]] == [sn]
        else:
            assert_problem(response, 404, "not_found")


@pytest.mark.parametrize("persona", PERSONAS)
def test_who_may_send_and_issue_over_the_api(fleet, api_as, clock, persona):
    api = api_as(persona)
    expected = dict(zip(("message", "wipe", "credential"), MAY[persona], strict=True))
    calls = {
        "message": lambda: api.post(
            f"/terminals/{SN_A}/commands", {"kind": "message", "payload": {"text": "x"}}
        ),
        "wipe": lambda: api.post(f"/terminals/{SN_A}/commands", {"kind": "wipe"}, totp=clock.code()),
        "credential": lambda: api.post(f"/terminals/{SN_A}/device-credential", {}, totp=clock.code()),
    }
    for name, call in calls.items():
        clock.advance()  # a fresh code for each call (a code works once)
        if expected[name] == "201":
            assert call().status_code == 201, name
            continue
        # The code is verified before the service looks at anything: that verification is the only trace.
        spent = [EventType.STEP_UP_SUCCEEDED] if name != "message" else []
        rows = (fleet[SN_A], DeviceCommand.objects.all(), DeviceCredential.objects.all())
        with assert_nothing_recorded(*rows, audit=spent):
            response = call()
            code = {"403": "permission_denied", "404": "not_found"}[expected[name]]
            assert_problem(response, int(expected[name]), code)


@pytest.mark.parametrize(
    "path",
    [f"/terminals/{SN_A}/commands", f"/terminals/{SN_A}/device-credential", f"/terminals/{SN_B}/commands"],
)
def test_anonymous_and_read_only_tokens_write_nothing(fleet, api_as, clock, path):
    reader = api_as("admin", "read")  # made before: its own creation is audited
    with assert_nothing_recorded(DeviceCommand.objects.all(), DeviceCredential.objects.all()):
        assert_problem(
            api_as(None).post(path, {"kind": "message", "payload": {"text": "x"}}), 401, "not_authenticated"
        )
        read_only = reader.post(path, {"kind": "message", "payload": {"text": "x"}})
        assert_problem(read_only, 403, "permission_denied")
    assert_problem(api_as(None).get(f"/terminals/{SN_A}/commands"), 401, "not_authenticated")
    assert reader.get(f"/terminals/{SN_A}/commands").status_code == 200


# ---------------------------------------------------------------------------------------------
# The simulator against a live server


class Said:
    """What the simulator tells (its ``out``), kept."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, text: str) -> None:
        self.lines.append(text)

    def flush(self) -> None:
        pass

    @property
    def text(self) -> str:
        return "".join(self.lines)


@pytest.mark.django_db(transaction=True)
def test_the_simulator_acknowledges_a_wipe_over_http(live_server, world):
    make_terminal(world, "SN-SIM-0001", Status.ACTIVE)
    make_terminal(world, "SN-SIM-0002", Status.ACTIVE, merchant=world.merchant_b)
    devices = simulator.demo_devices()
    assert {d.sn for d in devices} == {"SN-SIM-0001", "SN-SIM-0002"}
    for d in devices:
        if d.sn == "SN-SIM-0002":
            d.behaviour = "silent"
    wipe = device_command_send(actor=CLOSURE, sn="SN-SIM-0001", kind="wipe", key="closure:sim:wipe")
    ignored = device_command_send(actor=CLOSURE, sn="SN-SIM-0002", kind="wipe", key="closure:sim2:wipe")
    out = Said()

    tally = simulator.play(
        devices, url=live_server.url, interval=0, rounds=2, out=out, stop=threading.Event()
    )
    wipe.refresh_from_db()
    ignored.refresh_from_db()
    assert (wipe.status, wipe.result["wiped"]) == ("acknowledged", True)
    assert wipe.result["at"]
    assert ignored.status == "delivered"  # fetched, never answered
    assert (tally.heartbeats, tally.acknowledged, tally.ignored, tally.errors) == (4, 1, 1, 0)
    assert f"SN-SIM-0001: wipe #{wipe.pk} acknowledged" in out.text
    for d in devices:
        assert d.secret not in out.text


@pytest.mark.django_db(transaction=True)
def test_the_simulator_says_once_that_the_server_cannot_be_reached(world):
    """Started before the web process listens (``make run``), the simulator says so once, not once per
    device and round; each round counts one error and tries again."""
    make_terminal(world, "SN-SIM-0003", Status.ACTIVE)
    make_terminal(world, "SN-SIM-0004", Status.ACTIVE, merchant=world.merchant_b)
    devices = simulator.demo_devices()
    out = Said()

    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    tally = simulator.play(devices, url=url, interval=0, rounds=3, out=out, stop=threading.Event())
    assert (tally.heartbeats, tally.errors) == (0, 3)
    said = out.text
    assert said.count("cannot reach") == 1, said
    for d in devices:
        assert d.sn not in said
        assert d.secret not in said
