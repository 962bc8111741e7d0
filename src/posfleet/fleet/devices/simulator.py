"""Smart terminals polling the device command channel: heartbeat, fetch, and answer (or ignore) commands.

Each simulated device speaks HTTP to ``/api/v1/device/...`` exactly as a real one would, with its own
credential (``Authorization: Device <key_id>:<secret>``): a heartbeat (firmware, a location near its
store), then the commands waiting for it, then an answer to each, by its behaviour:

- ``ack``: done (a wipe answers ``{"wiped": true, "at": ...}``, a lock ``{"locked": true, ...}``...);
- ``fail``: the device could not (``{"error": ...}``);
- ``silent``: it fetches and never answers (its commands stay delivered until they expire).

``posfleet simulate devices --credentials FILE`` plays the devices of a JSON list of
``{"sn", "key_id", "secret"}``; ``--demo`` issues fresh credentials (through the service, as the system)
for the active smart terminals of the local database and plays them. Secrets are never printed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import requests
from django.core.management.base import CommandError

from posfleet.fleet.selectors import active_smart_terminals
from posfleet.fleet.services import device_credential_issue
from posfleet.platform.context import Actor

BEHAVIOURS = ("ack", "fail", "silent")
DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_FIRMWARE = "SIM-1.0.0"
TIMEOUT = 10.0


@dataclass
class Device:
    """One simulated terminal: who it is, how it behaves, and what it has answered."""

    sn: str
    key_id: str
    secret: str = field(repr=False)
    behaviour: str = "ack"
    firmware: str = DEFAULT_FIRMWARE
    location: dict[str, float] | None = None
    answered: set[int] = field(default_factory=set)

    @property
    def authorization(self) -> str:
        return f"Device {self.key_id}:{self.secret}"


@dataclass
class Tally:
    heartbeats: int = 0
    fetched: int = 0
    acknowledged: int = 0
    failed: int = 0
    ignored: int = 0
    errors: int = 0

    def line(self) -> str:
        return (
            f"heartbeats={self.heartbeats} fetched={self.fetched} acknowledged={self.acknowledged} "
            f"failed={self.failed} ignored={self.ignored} errors={self.errors}"
        )


def answer(command: dict[str, Any], behaviour: str, at: datetime) -> tuple[bool, dict[str, Any]] | None:
    """What a device of ``behaviour`` answers to ``command`` (None: it stays silent)."""
    stamp = at.isoformat()
    if behaviour == "silent":
        return None
    if behaviour == "fail":
        return False, {"error": "simulated failure", "at": stamp}
    kind = command.get("kind")
    payload = command.get("payload") or {}
    if kind == "wipe":
        return True, {"wiped": True, "at": stamp}
    if kind == "lock":
        return True, {"locked": True, "at": stamp}
    if kind == "unlock":
        return True, {"unlocked": True, "at": stamp}
    if kind == "message":
        return True, {"shown": True, "at": stamp}
    if kind == "update_params":
        return True, {"applied": sorted(payload.get("params") or {}), "at": stamp}
    return False, {"error": f"unknown command {kind!r}", "at": stamp}


class DeviceClient:
    """The device channel as one device sees it."""

    def __init__(self, base_url: str, device: Device, session: requests.Session | None = None) -> None:
        self.base = base_url.rstrip("/") + "/api/v1/device"
        self.device = device
        self.session = session or requests.Session()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = self.session.request(
            method,
            self.base + path,
            json=body,
            headers={"Authorization": self.device.authorization, "Accept-Language": "en"},
            timeout=TIMEOUT,
        )
        if response.status_code >= 400:
            # The problem's code and status only: a body never holds the secret, but say no more than needed.
            try:
                code = response.json().get("code", "")
            except ValueError:
                code = ""
            raise DeviceError(f"{method} {path}: {response.status_code} {code}".rstrip())
        return response.json()

    def heartbeat(self) -> dict[str, Any]:
        body: dict[str, Any] = {"firmware": self.device.firmware}
        if self.device.location is not None:
            body["location"] = self.device.location
        return dict(self._call("POST", "/heartbeat", body))

    def fetch(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/commands")["items"])

    def ack(self, command_id: int, ok: bool, result: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("POST", f"/commands/{command_id}/ack", {"ok": ok, "result": result}))


class DeviceError(Exception):
    """The channel refused a device's request (the message names the status and the problem's code)."""


def play_once(
    client: DeviceClient, tally: Tally, say: Callable[[str], None], clock: Callable[[], datetime]
) -> None:
    """One poll of one device: heartbeat, fetch, answer what it has not answered yet."""
    device = client.device
    client.heartbeat()
    tally.heartbeats += 1
    for command in client.fetch():
        command_id = int(command["id"])
        if command_id in device.answered:
            continue
        tally.fetched += 1
        reply = answer(command, device.behaviour, clock())
        if reply is None:
            say(f"{device.sn}: {command['kind']} #{command_id} fetched, not answering (silent)")
            device.answered.add(command_id)  # it comes again on every fetch: ignored once, told once
            tally.ignored += 1
            continue
        ok, result = reply
        client.ack(command_id, ok, result)
        device.answered.add(command_id)
        if ok:
            tally.acknowledged += 1
        else:
            tally.failed += 1
        say(f"{device.sn}: {command['kind']} #{command_id} {'acknowledged' if ok else 'failed'}")


def play(
    devices: Sequence[Device],
    *,
    url: str = DEFAULT_URL,
    interval: float = 5.0,
    rounds: int = 0,
    stop: threading.Event | None = None,
    out: TextIO | None = None,
    session: requests.Session | None = None,
    clock: Callable[[], datetime] | None = None,
    tally: Tally | None = None,
) -> Tally:
    """Poll as every device in ``devices``, every ``interval`` seconds, for ``rounds`` rounds (0: until
    ``stop`` is set or Ctrl-C). A refused request (a revoked credential: 401) is counted and told, and
    the device goes on polling, as a real one would. A server that cannot be reached at all (not yet
    started, or gone) is told once, not for every device: the round ends there (one error counted)
    and the next one tries again; "answers again" is told when it does."""
    stop = stop or threading.Event()
    session = session or requests.Session()
    tally = tally if tally is not None else Tally()
    clients = [DeviceClient(url, device, session) for device in devices]
    now = clock or (lambda: datetime.now(UTC))

    def say(text: str) -> None:
        if out is not None:
            out.write(text + "\n")
            out.flush()

    done = 0
    unreachable = False
    while not stop.is_set():
        for client in clients:
            try:
                play_once(client, tally, say, now)
            except requests.ConnectionError as exc:  # the server, not this device: the others too
                tally.errors += 1
                if not unreachable:
                    say(f"cannot reach {url} ({exc.__class__.__name__}); trying again every {interval:g} s")
                unreachable = True
                break
            except (DeviceError, requests.RequestException) as exc:
                tally.errors += 1
                say(f"{client.device.sn}: {exc.__class__.__name__}: {_safe(exc, client.device)}")
            if unreachable:
                say(f"{url} answers again")
                unreachable = False
        done += 1
        if rounds and done >= rounds:
            break
        stop.wait(interval)
    return tally


def _safe(exc: Exception, device: Device) -> str:
    """An error's text without the device's secret (a connection error may quote a header)."""
    return str(exc).replace(device.secret, "***")


# ---------------------------------------------------------------------------------------------
# Devices to play


def load_credentials(path: str | Path) -> list[Device]:
    """Devices from a JSON list of ``{"sn", "key_id", "secret"}`` (optional ``behaviour``)."""
    rows = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(rows, list):
        raise ValueError("the credentials file holds a JSON list of {sn, key_id, secret}")
    devices = []
    for row in rows:
        if not isinstance(row, dict) or not all(
            isinstance(row.get(k), str) for k in ("sn", "key_id", "secret")
        ):
            raise ValueError("each credential is an object with sn, key_id and secret")
        behaviour = row.get("behaviour", "ack")
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {behaviour!r}: {', '.join(BEHAVIOURS)}")
        devices.append(Device(sn=row["sn"], key_id=row["key_id"], secret=row["secret"], behaviour=behaviour))
    return devices


def save_credentials(devices: Iterable[Device], path: str | Path) -> None:
    """Write ``devices``' credentials for a later ``--credentials`` (readable by the owner only)."""
    target = Path(path)
    data = json.dumps([{"sn": d.sn, "key_id": d.key_id, "secret": d.secret} for d in devices], indent=2)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(data + "\n")


def demo_devices(limit: int = 0) -> list[Device]:
    """Fresh credentials, issued through the service as the system, for the active smart terminals of
    the local database (at most ``limit``; 0: all). Each replaces the terminal's previous credential."""
    actor = Actor.system("simulate devices")
    terminals = active_smart_terminals().values_list("sn", "store__latitude", "store__longitude")
    devices = []
    for index, (sn, latitude, longitude) in enumerate(terminals[: limit or None]):
        credential, secret = device_credential_issue(actor=actor, sn=sn)
        # At its store (a few metres off) when the store has coordinates, else somewhere in Shanghai,
        # a little apart from each other: never far from its store (no relocation alert).
        if latitude is not None and longitude is not None:
            location = {"lat": round(float(latitude) + 0.0001, 6), "lon": round(float(longitude) + 0.0001, 6)}
        else:
            location = {"lat": round(31.2304 + index * 0.001, 6), "lon": round(121.4737 + index * 0.001, 6)}
        devices.append(Device(sn=sn, key_id=credential.key_id, secret=secret, location=location))
    return devices


# ---------------------------------------------------------------------------------------------
# `posfleet simulate devices`


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=DEFAULT_URL, help=f"posfleet's address (default {DEFAULT_URL}).")
    parser.add_argument(
        "--credentials", metavar="FILE", help='JSON list of {"sn", "key_id", "secret"}: the devices to play.'
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="Issue fresh credentials for the active smart terminals in the local database and play them.",
    )
    parser.add_argument("--limit", type=int, default=0, help="With --demo: at most this many terminals.")
    parser.add_argument(
        "--save", metavar="FILE", help="With --demo: write the issued credentials here (owner-only file)."
    )
    parser.add_argument("--interval", type=float, default=5.0, help="Seconds between polls (default 5).")
    parser.add_argument(
        "--rounds", type=int, default=0, help="Polls per device, then stop (default 0: forever)."
    )
    parser.add_argument("--silent", nargs="+", default=[], metavar="SN", help="These devices never answer.")
    parser.add_argument(
        "--fail", nargs="+", default=[], metavar="SN", help="These devices answer that they failed."
    )


def run(options: dict[str, Any], stdout: Any) -> Tally:
    """Play the devices of ``--credentials`` and/or ``--demo`` until Ctrl-C (or ``--rounds``), then
    print the tally."""
    devices: list[Device] = []
    if options.get("credentials"):
        try:
            devices.extend(load_credentials(options["credentials"]))
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot read the credentials: {exc}", returncode=2) from exc
    if options.get("demo"):
        issued = demo_devices(options.get("limit") or 0)
        if options.get("save"):
            save_credentials(issued, options["save"])
        devices.extend(issued)
    if not devices:
        raise CommandError("no devices to play: give --credentials FILE or --demo", returncode=2)
    silent = {sn.strip().upper() for sn in options.get("silent") or []}
    failing = {sn.strip().upper() for sn in options.get("fail") or []}
    for device in devices:
        if device.sn in silent:
            device.behaviour = "silent"
        elif device.sn in failing:
            device.behaviour = "fail"
    url = options.get("url") or DEFAULT_URL
    stdout.write(f"Playing {len(devices)} device(s) against {url} (Ctrl-C stops):")
    for device in devices:
        stdout.write(f"  {device.sn}  key {device.key_id}  {device.behaviour}")
    out = getattr(stdout, "_out", stdout)
    tally = Tally()
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends the play; the tally is still told
        play(
            devices,
            tally=tally,
            url=url,
            interval=max(float(options.get("interval") or 5.0), 0.0),
            rounds=int(options.get("rounds") or 0),
            out=out,
        )
    stdout.write(tally.line())
    return tally
