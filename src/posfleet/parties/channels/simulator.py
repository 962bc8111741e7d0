"""Payment channels on loopback (UnionPay card and QR, Alipay, WeChat Pay, JD Pay): unbind and status.

Each can be told to answer, refuse, fail, time out or answer late. Each channel speaks its own wire
format (what ``parties.channels.adapters`` expects of the real one) and keeps the bindings it has
unbound, so a status query after an unbind whose answer was lost says "unbound". Any merchant id it has
not unbound counts as bound. An unbind is acted on once per request number (the caller's idempotency
key): the same key again gets the first answer again; another key for a binding unbound already gets
the channel's "already unbound".

Tell a channel how to behave for its next calls::

    POST /_control {"channel": "alipay", "mode": "refuse", "times": 2, "op": "unbind"}

``mode``: ``answer`` (normal), ``refuse`` (a business "no"), ``fail`` (an error answer), ``timeout``
(hangs past the client's timeout and does nothing), ``late`` (does it, then answers after the delay);
``times``: how many calls of ``op`` (``unbind``, the default, or ``status``) it applies to, then back
to answering; ``delay`` (seconds) overrides ``--delay``. ``GET /_state`` shows the calls received and
the bindings unbound; ``POST /_reset`` forgets everything.
"""

from __future__ import annotations

import argparse
import itertools
import json
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlencode

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8585
DEFAULT_DELAY = 10.0  # longer than the client's default timeout (POSFLEET_CHANNELS_TIMEOUT, 5 s)
CHANNELS = ("unionpay_card", "unionpay_qr", "alipay", "wechat_pay", "jd_pay")
MODES = ("answer", "refuse", "fail", "timeout", "late")
OPERATIONS = ("unbind", "status")
MAX_BODY = 64 * 1024

# (HTTP status, content type, body, extra headers)
Reply = tuple[int, str, bytes, dict[str, str]]


@dataclass(frozen=True)
class Call:
    """One call a channel received (``mode``: how it was told to behave for it)."""

    channel: str
    op: str
    merchant_id: str
    key: str
    mode: str


@dataclass(frozen=True)
class Unbind:
    """What an unbind came to at the channel: done now (``already`` False) or found done before."""

    reference: str
    already: bool = False


class ChannelSimulator:
    """The channels' state and behaviour, served by a ``ThreadingHTTPServer`` (``start``/``stop`` in a
    thread for tests, ``serve_forever`` for the command)."""

    def __init__(
        self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, delay: float = DEFAULT_DELAY
    ) -> None:
        self.delay = delay
        self.calls: list[Call] = []
        self.unbound: dict[tuple[str, str], str] = {}  # (channel, merchant id) -> the unbind's reference
        self.effects: list[tuple[str, str, str]] = []  # (channel, merchant id, key): unbinds acted on
        self._replies: dict[tuple[str, str], Unbind] = {}  # (channel, key) -> the first answer
        self._plans: dict[tuple[str, str], list[tuple[str, float]]] = {}  # (channel, op) -> next modes
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.server = _Server((host, port), _handler(self))

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- running -------------------------------------------------------------------------------------

    def start(self) -> None:
        # A short poll: stopping (tests start one per test) waits for at most one poll.
        self._thread = threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="channel-simulator",
            daemon=True,
        )
        self._thread.start()

    def serve_forever(self) -> None:
        self.server.serve_forever()

    def stop(self) -> None:
        self._stopping.set()  # wakes the calls that hang or answer late
        self.server.shutdown()
        self.server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- what tests (and /_control) tell it, and what it saw ----------------------------------------

    def control(
        self, channel: str, mode: str, times: int = 1, *, op: str = "unbind", delay: float | None = None
    ) -> None:
        """Behave as ``mode`` for the next ``times`` calls of ``op`` to ``channel`` (``answer``: as
        normal again, from now on)."""
        if channel not in CHANNELS or mode not in MODES or op not in OPERATIONS or times < 0:
            raise ValueError(f"channel in {CHANNELS}, mode in {MODES}, op in {OPERATIONS}, times >= 0")
        with self._lock:
            self._plans[(channel, op)] = [] if mode == "answer" else [(mode, delay or self.delay)] * times

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.unbound.clear()
            self.effects.clear()
            self._replies.clear()
            self._plans.clear()

    def calls_of(self, channel: str, op: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.channel == channel and (op is None or c.op == op)]

    def unbinds_done(self, channel: str, merchant_id: str) -> int:
        """How many unbinds of this binding the channel acted on (a correct client: at most one)."""
        with self._lock:
            return sum(1 for c, m, _ in self.effects if (c, m) == (channel, merchant_id))

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "calls": [asdict(c) for c in self.calls],
                "unbound": [
                    {"channel": c, "merchant_id": m, "reference": r} for (c, m), r in self.unbound.items()
                ],
                "plans": {f"{c}/{op}": [m for m, _ in plan] for (c, op), plan in self._plans.items() if plan},
            }

    # -- one call ------------------------------------------------------------------------------------

    def handle(self, channel: str, op: str, merchant_id: str, key: str) -> Reply | None:
        """Answer one call as told; None: hang up without an answer."""
        with self._lock:
            plan = self._plans.get((channel, op)) or []
            mode, delay = plan.pop(0) if plan else ("answer", self.delay)
            self.calls.append(Call(channel, op, merchant_id, key, mode))
        wire = WIRES[channel]
        if mode == "timeout":
            self._stopping.wait(delay)
            return None
        if mode == "fail":
            return wire.fail(op)
        if mode == "refuse":
            return wire.refuse(op)
        if op == "unbind":
            reply = wire.unbind(self._unbind(channel, merchant_id, key))
        else:
            with self._lock:
                reference = self.unbound.get((channel, merchant_id))
            reply = wire.status(reference)
        if mode == "late":
            self._stopping.wait(delay)
        return reply

    def _unbind(self, channel: str, merchant_id: str, key: str) -> Unbind:
        with self._lock:
            if (channel, key) in self._replies:  # the same request again: the same answer, nothing done
                return self._replies[(channel, key)]
            if (channel, merchant_id) in self.unbound:
                result = Unbind(self.unbound[(channel, merchant_id)], already=True)
            else:
                result = Unbind(f"{channel.upper().replace('_', '')}{next(self._numbers):08d}")
                self.unbound[(channel, merchant_id)] = result.reference
                self.effects.append((channel, merchant_id, key))
            self._replies[(channel, key)] = result
            return result


# ---------------------------------------------------------------------------------------------
# The wire formats: how each channel reads a request and words its answers.


def _json(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    data = json.dumps(body, ensure_ascii=False).encode()
    return status, "application/json; charset=utf-8", data, headers or {}


def _form(fields: dict[str, str], status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return (
        status,
        "application/x-www-form-urlencoded; charset=utf-8",
        urlencode(fields).encode(),
        headers or {},
    )


@dataclass(frozen=True)
class Wire:
    # (path) -> (op, merchant id field, key field); the request is form-encoded or JSON
    paths: dict[str, tuple[str, str, str]]
    form: bool
    unbind: Callable[[Unbind], Reply]
    status: Callable[[str | None], Reply]
    refuse: Callable[[str], Reply]
    fail: Callable[[str], Reply]


def _unionpay(prefix: str, merchant_field: str, key_field: str) -> Wire:
    def unbind(result: Unbind) -> Reply:
        if result.already:
            return _form(
                {"respCode": "61", "respMsg": "binding already cancelled", "queryId": result.reference}
            )
        return _form({"respCode": "00", "respMsg": "success", "queryId": result.reference})

    def status(reference: str | None) -> Reply:
        state = "unbound" if reference else "bound"
        return _form(
            {"respCode": "00", "respMsg": "success", "bindStatus": state, "queryId": reference or ""}
        )

    return Wire(
        paths={
            f"{prefix}/unbind": ("unbind", merchant_field, key_field),
            f"{prefix}/query": ("status", merchant_field, ""),
        },
        form=True,
        unbind=unbind,
        status=status,
        refuse=lambda op: _form({"respCode": "12", "respMsg": "merchant has unsettled transactions"}),
        fail=lambda op: _form({"respCode": "96", "respMsg": "system error"}, 503, {"Retry-After": "60"}),
    )


def _alipay_response(op: str, body: dict[str, Any]) -> Reply:
    method = "alipay_merchant_terminal_unbind" if op == "unbind" else "alipay_merchant_terminal_query"
    return _json({f"{method}_response": body})


ALIPAY = Wire(
    paths={"/alipay/gateway.do": ("", "merchant_id", "out_request_no")},  # the op is the JSON "method"
    form=False,
    unbind=lambda r: _alipay_response(
        "unbind",
        {
            "code": "40004",
            "msg": "Business Failed",
            "sub_code": "ALREADY_UNBOUND",
            "sub_msg": "already unbound",
        }
        if r.already
        else {"code": "10000", "msg": "Success", "unbind_no": r.reference},
    ),
    status=lambda ref: _alipay_response(
        "status",
        {
            "code": "10000",
            "msg": "Success",
            "bind_status": "UNBOUND" if ref else "BOUND",
            "unbind_no": ref or "",
        },
    ),
    refuse=lambda op: _alipay_response(
        op,
        {
            "code": "40004",
            "msg": "Business Failed",
            "sub_code": "ACQ.MERCHANT_HAS_UNSETTLED",
            "sub_msg": "merchant has unsettled transactions",
        },
    ),
    fail=lambda op: _alipay_response(
        op, {"code": "20000", "msg": "Service Currently Unavailable", "sub_code": "isp.unknow-error"}
    ),
)

WECHAT_PAY = Wire(
    paths={
        "/wechatpay/merchant/unbind": ("unbind", "sub_mch_id", "out_request_no"),
        "/wechatpay/merchant/query": ("status", "sub_mch_id", ""),
    },
    form=False,
    unbind=lambda r: _json(
        {
            "return_code": "SUCCESS",
            "result_code": "FAIL",
            "err_code": "ALREADY_UNBOUND",
            "err_code_des": "already unbound",
        }
        if r.already
        else {
            "return_code": "SUCCESS",
            "return_msg": "OK",
            "result_code": "SUCCESS",
            "unbind_id": r.reference,
        }
    ),
    status=lambda ref: _json(
        {
            "return_code": "SUCCESS",
            "result_code": "SUCCESS",
            "bind_state": "UNBOUND" if ref else "BOUND",
            "unbind_id": ref or "",
        }
    ),
    refuse=lambda op: _json(
        {
            "return_code": "SUCCESS",
            "result_code": "FAIL",
            "err_code": "MCH_PENDING_SETTLEMENT",
            "err_code_des": "merchant has unsettled transactions",
        }
    ),
    fail=lambda op: _json({"return_code": "FAIL", "return_msg": "system busy"}, 500),
)

JD_PAY = Wire(
    paths={
        "/jdpay/merchant/terminal/unbind": ("unbind", "merchantNo", "requestNo"),
        "/jdpay/merchant/terminal/query": ("status", "merchantNo", ""),
    },
    form=False,
    unbind=lambda r: _json(
        {"resultCode": "E0409", "resultDesc": "already unbound"}
        if r.already
        else {"resultCode": "0000", "resultDesc": "success", "data": {"unbindNo": r.reference}}
    ),
    status=lambda ref: _json(
        {
            "resultCode": "0000",
            "resultDesc": "success",
            "data": {"status": "UNBIND" if ref else "BIND", "unbindNo": ref or ""},
        }
    ),
    refuse=lambda op: _json({"resultCode": "E2001", "resultDesc": "merchant has unsettled transactions"}),
    fail=lambda op: _json({"resultCode": "9999", "resultDesc": "system busy"}),
)

WIRES: dict[str, Wire] = {
    "unionpay_card": _unionpay("/unionpay/card", "merId", "orderId"),
    "unionpay_qr": _unionpay("/unionpay/qr", "mchntCd", "reqSn"),
    "alipay": ALIPAY,
    "wechat_pay": WECHAT_PAY,
    "jd_pay": JD_PAY,
}
ROUTES: dict[str, str] = {path: channel for channel, wire in WIRES.items() for path in wire.paths}
ALIPAY_METHODS = {"alipay.merchant.terminal.unbind": "unbind", "alipay.merchant.terminal.query": "status"}


class BadRequest(ValueError):
    pass


def _parse(channel: str, path: str, raw: bytes) -> tuple[str, str, str]:
    """(op, merchant id, key) of a request in ``channel``'s format."""
    wire = WIRES[channel]
    op, merchant_field, key_field = wire.paths[path]
    try:
        if wire.form:
            fields: dict[str, Any] = dict(parse_qsl(raw.decode(), strict_parsing=True))
        else:
            fields = json.loads(raw)
            if channel == "alipay":
                op = ALIPAY_METHODS[fields["method"]]
                fields = fields["biz_content"]
        merchant_id = str(fields[merchant_field])
        key = str(fields[key_field]) if op == "unbind" else ""
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise BadRequest(str(exc)) from exc
    if not merchant_id or (op == "unbind" and not key):
        raise BadRequest("the merchant id and the request number are required")
    return op, merchant_id, key


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a call told to hang does not hold up a stop
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (timeout) and closed: nothing to report


def _handler(simulator: ChannelSimulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "posfleet-channel-simulator"

        def do_GET(self) -> None:
            if self.path == "/_state":
                self._reply(_json(simulator.state()))
            else:
                self._reply(_json({"error": "not found"}, 404))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._reply(_json({"error": "too large"}, 413))
                return
            raw = self.rfile.read(length)
            if self.path == "/_control":
                self._control(raw)
            elif self.path == "/_reset":
                simulator.reset()
                self._reply(_json({"ok": True}))
            elif self.path in ROUTES:
                channel = ROUTES[self.path]
                try:
                    op, merchant_id, key = _parse(channel, self.path, raw)
                except BadRequest as exc:
                    self._reply(_json({"error": f"bad request: {exc}"}, 400))
                    return
                reply = simulator.handle(channel, op, merchant_id, key)
                if reply is not None:
                    self._reply(reply)
            else:
                self._reply(_json({"error": "not found"}, 404))

        def _control(self, raw: bytes) -> None:
            try:
                order = json.loads(raw)
                simulator.control(
                    order["channel"],
                    order.get("mode", "answer"),
                    int(order.get("times", 1)),
                    op=order.get("op", "unbind"),
                    delay=float(order["delay"]) if "delay" in order else None,
                )
            except (ValueError, KeyError, TypeError) as exc:
                self._reply(_json({"error": str(exc)}, 400))
                return
            self._reply(_json({"ok": True}))

        def _reply(self, reply: Reply) -> None:
            status, content_type, body, headers = reply
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


# ---------------------------------------------------------------------------------------------
# `posfleet simulate channels`


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument(
        "--delay",
        type=float,
        default=DEFAULT_DELAY,
        help="seconds a 'late' or 'timeout' call waits before answering or hanging up; longer than the "
        f"client's POSFLEET_CHANNELS_TIMEOUT (default {DEFAULT_DELAY:g})",
    )


def run(options: dict[str, Any], stdout: TextIO) -> None:
    simulator = ChannelSimulator(options["host"], options["port"], options["delay"])
    stdout.write(f"Payment channels simulated at {simulator.url} (Ctrl-C to stop)\n")
    for path, channel in ROUTES.items():
        stdout.write(f"  {channel:<14} POST {path}\n")
    stdout.write(
        '  control: POST /_control {"channel": "alipay", "mode": "refuse", "times": 1}'
        " (modes: answer, refuse, fail, timeout, late)\n"
        "  state:   GET /_state    reset: POST /_reset\n"
    )
    stdout.flush()
    try:
        simulator.serve_forever()
    except KeyboardInterrupt:
        stdout.write("stopped\n")
    finally:
        simulator.server.server_close()
