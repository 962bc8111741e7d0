"""`posfleet run`: what it starts (web, worker, scheduler, gateway, the channel, device, issuer and
terminal simulators) and how
the supervisor stops them — all on Ctrl-C or when a process dies, but not when a simulator exits."""

from __future__ import annotations

import io
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

from posfleet.ops.management.commands.run import Command, processes
from posfleet.ops.supervisor import Process, supervise
from posfleet.testing.servers import free_port

PY = sys.executable


def sleeper(name: str, seconds: float = 30, **kwargs: bool) -> Process:
    return Process(
        name, [PY, "-c", f"import time; print('{name} up', flush=True); time.sleep({seconds})"], **kwargs
    )


def test_run_starts_the_simulators_with_the_web(settings, tmp_path: Path) -> None:
    settings.VAR_DIR = tmp_path
    settings.POSFLEET_CHANNELS_URL = "http://127.0.0.1:8585"
    settings.POSFLEET_GATEWAY_BIND = "127.0.0.1:8583"
    settings.POSFLEET_ISSUER_ADDRESS = "127.0.0.1:8584"
    started = {p.name: p for p in processes("127.0.0.1:8000")}
    assert list(started) == [
        "web",
        "worker",
        "scheduler",
        "gateway",
        "channels",
        "devices",
        "issuer",
        "terminals",
    ]
    assert started["channels"].argv[-5:] == ["channels", "--host", "127.0.0.1", "--port", "8585"]
    devices = list(started["devices"].argv)
    assert devices[devices.index("devices") :] == ["devices", "--demo", "--url", "http://127.0.0.1:8000"]
    assert started["gateway"].argv[-3:] == ["gateway", "--bind", "127.0.0.1:8583"]
    assert started["issuer"].argv[-5:] == ["issuer", "--host", "127.0.0.1", "--port", "8584"]
    terminals = list(started["terminals"].argv)
    assert terminals[terminals.index("terminals") :][:3] == ["terminals", "--gateway", "127.0.0.1:8583"]
    assert float(terminals[terminals.index("--rate") + 1]) <= 2  # a demo's pace, not a load test
    for name in ("channels", "devices", "issuer", "terminals"):
        assert started[name].optional
    # The terminals sell once the gateway and the issuer answer (no 91 from an issuer still starting).
    assert started["terminals"].after == (("127.0.0.1", 8583), ("127.0.0.1", 8584))
    assert not any(started[name].after for name in started if name != "terminals")
    # The gateway is part of the system (ARCHITECTURE): not a simulator, not optional.
    assert not any(started[name].optional for name in ("web", "worker", "scheduler", "gateway"))

    # With the demo's credentials file, the device simulator plays exactly those devices.
    (tmp_path / "demo-devices.json").write_text("[]")
    devices = list({p.name: p for p in processes("127.0.0.1:9000")}["devices"].argv)
    assert devices[devices.index("devices") :] == [
        "devices",
        "--credentials",
        str(tmp_path / "demo-devices.json"),
        "--url",
        "http://127.0.0.1:9000",
    ]
    # The channel simulator listens where the channel clients call.
    settings.POSFLEET_CHANNELS_URL = "http://127.0.0.1:9595/"
    assert {p.name: p for p in processes("127.0.0.1:8000")}["channels"].argv[-2:] == ["--port", "9595"]
    assert [p.name for p in processes("127.0.0.1:8000", simulators=False)] == [
        "web",
        "worker",
        "scheduler",
        "gateway",
    ]


def test_the_banner_names_the_simulators_and_their_urls(settings, tmp_path: Path) -> None:
    settings.VAR_DIR = tmp_path
    settings.POSFLEET_CHANNELS_URL = "http://127.0.0.1:8585"
    settings.POSFLEET_GATEWAY_BIND = "127.0.0.1:8583"
    settings.POSFLEET_ISSUER_ADDRESS = "127.0.0.1:8584"
    out = io.StringIO()
    command = Command(stdout=out)
    command._banner("127.0.0.1:8000", processes("127.0.0.1:8000"))
    text = out.getvalue()
    assert "web, worker, scheduler, gateway, channels, devices, issuer, terminals" in text
    assert "http://127.0.0.1:8585/_state" in text
    assert "gateway   127.0.0.1:8583" in text
    assert "issuer    127.0.0.1:8584" in text
    assert "POS terminals selling through the gateway" in text
    assert "http://127.0.0.1:8000/api/v1/device/" in text
    assert "http://127.0.0.1:8000/console/" in text


def test_a_simulator_that_exits_leaves_the_others_running_and_ctrl_c_stops_all() -> None:
    out = io.StringIO()
    procs = [sleeper("web"), Process("devices", [PY, "-c", "raise SystemExit(2)"], optional=True)]
    seen: list[bool] = []

    def press_ctrl_c() -> None:
        deadline = time.monotonic() + 20
        while "the others keep running" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        seen.append("stopping everything" not in out.getvalue())  # the web still ran
        os.kill(os.getpid(), signal.SIGINT)  # the supervisor's handler (main thread) stops everything

    threading.Thread(target=press_ctrl_c, daemon=True).start()
    started = time.monotonic()
    code = supervise(procs, out=out, grace=5)
    assert code == 0
    assert seen == [True]
    assert "devices exited with code 2; the others keep running" in out.getvalue()
    assert "web up" in out.getvalue()
    assert time.monotonic() - started < 25  # stopped by Ctrl-C, not by the sleeper's end


def test_a_process_that_dies_stops_everything() -> None:
    out = io.StringIO()
    started = time.monotonic()
    code = supervise([sleeper("web"), Process("worker", [PY, "-c", "raise SystemExit(3)"])], out=out, grace=5)
    assert code == 3
    assert "worker exited with code 3; stopping everything" in out.getvalue()
    assert time.monotonic() - started < 20  # the web was stopped, not waited for


def test_a_process_starts_once_the_addresses_it_waits_for_answer() -> None:
    out = io.StringIO()
    port = free_port()
    waiter = Process(
        "terminals",
        [PY, "-c", "print('terminals up', flush=True)"],
        optional=True,
        after=(("127.0.0.1", port),),
    )
    seen: list[str] = []

    def open_then_stop() -> None:
        time.sleep(1.0)
        seen.append(out.getvalue())  # nothing listens yet: the waiter has not started
        listener = socket.create_server(("127.0.0.1", port))
        deadline = time.monotonic() + 20
        while "terminals up" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.1)
        listener.close()
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=open_then_stop, daemon=True).start()
    assert supervise([sleeper("web"), waiter], out=out, grace=5) == 0
    assert f"terminals starts once 127.0.0.1:{port} answer" in seen[0]
    assert "terminals up" not in seen[0]
    assert "web up" in out.getvalue()
    assert "terminals up" in out.getvalue()
