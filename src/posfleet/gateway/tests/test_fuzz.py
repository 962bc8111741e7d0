"""QUALITY.md "ISO 8583 fuzzing": hypothesis mutations of valid 0200, 0400 and 0800 messages (bitmaps,
length prefixes, truncation, appended bytes, oversize frames, random bytes, one byte anywhere, the MAC,
an unknown TID, lying frame lengths), each sent on a raw socket to one real gateway per test.

For every example: an answer or a closed connection within ``PROBE_TIMEOUT`` (never a hang); an answer
a terminal can read, never ``96`` and nothing logged as an error (no crash); a mutated sale or reversal
never ``00`` (field 64 covers every byte after the TPDU); a mutated sign-on (not MACed) approved only
when its bytes still decode to a request of the same TID and MID. Every ``CHECK_EVERY`` examples and at
the end the same gateway still approves a valid sale from the good terminal on a new connection, and at
the end the database holds exactly the valid messages that were sent, nothing else.
"""

from __future__ import annotations

import logging
import socket
import string
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

import iso8583
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from posfleet.billing.models import Transaction
from posfleet.fleet.models import Terminal as TerminalRow
from posfleet.fleet.states import Status
from posfleet.gateway import codec
from posfleet.gateway import dialect as d
from posfleet.gateway.server import Limits
from posfleet.gateway.terminal import TPDU, Terminal
from posfleet.gateway.tests.conftest import Running, terminal_of
from posfleet.platform import paycrypto
from posfleet.testing.money import on_standard_plan
from posfleet.testing.personas import make_terminal

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db(transaction=True)]

CARD = "6225880123456789"
PROBE_TIMEOUT = 3.0  # seconds: an answer or a close within this, or the gateway hangs
CHECK_EVERY = 25  # examples between two checks that the good terminal is still served
FUZZ = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FRAMES = settings(FUZZ, max_examples=80)  # a lying frame length may cost a read timeout (0.5 s) each
SMALL = Limits(read_timeout=0.5, idle_timeout=2)


# -- the good terminal and its valid messages ----------------------------------------------------


@dataclass(frozen=True)
class Base:
    """A valid request as bytes (after the TPDU), with where each field's length prefix and data are."""

    name: str
    raw: bytes
    at: dict[str, tuple[int, int, int]]  # field → (offset, length-prefix bytes, data bytes)

    @classmethod
    def of(cls, name: str, raw: bytes) -> Base:
        _doc, encoded = iso8583.decode(raw, d.SPEC)
        at, offset = {}, 0
        for key, part in encoded.items():  # in wire order: t, p, 2, 3, ...
            at[key] = (offset, len(part["len"]), len(part["data"]))
            offset += len(part["len"]) + len(part["data"])
        assert offset == len(raw)
        return cls(name, raw, at)

    @property
    def variable(self) -> list[str]:
        return [k for k, (_o, prefix, _n) in self.at.items() if prefix]

    def data(self, name: str) -> tuple[int, int]:
        offset, prefix, size = self.at[name]
        return offset + prefix, size


@dataclass
class World:
    running: Running
    row: TerminalRow
    pos: Terminal  # signed on; its session key MACs the bases
    sale: Base
    reversal: Base
    sign_on: Base
    valid_sales: int = 0
    valid_reversals: int = 0


def _mac(pos: Terminal) -> Callable[[bytes], bytes]:
    key, scheme = pos.session_key, pos.scheme
    assert key is not None
    return lambda data: paycrypto.mac(scheme, key, data)


def _stamp() -> dict[str, str]:
    at = datetime.now()
    return {"12": at.strftime("%H%M%S"), "13": at.strftime("%m%d")}


def _reversal_fields(pos: Terminal, sale: dict[str, str]) -> dict[str, str]:
    """What ``Terminal.reversal`` sends, without sending it."""
    fields = {k: v for k, v in sale.items() if k in {"2", "3", "4", "22", "25", "41", "42", "49"}}
    fields.update(
        {
            "11": pos.next_trace(),
            **_stamp(),
            "60": d.TYPE_REVERSAL + pos.batch_no + d.NET_NONE,
            "61": sale["60"][2:8] + sale["11"] + sale["13"],
        }
    )
    return fields


def _sign_on_fields(pos: Terminal) -> dict[str, str]:
    return {
        "11": pos.next_trace(),
        **_stamp(),
        "41": pos.tid,
        "42": pos.mid,
        "60": d.TYPE_SIGN_ON + pos.batch_no + d.NET_SIGN_ON,
    }


@pytest.fixture
def errors() -> Iterator[list[logging.LogRecord]]:
    """ERROR records of the gateway and of asyncio (an exception no handler caught) while the test runs."""
    seen: list[logging.LogRecord] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    handler = Catch(level=logging.ERROR)
    loggers = [logging.getLogger("posfleet.gateway"), logging.getLogger("asyncio")]
    for logger in loggers:
        logger.addHandler(handler)
    yield seen
    for logger in loggers:
        logger.removeHandler(handler)


def _world(running: Running, world) -> World:  # type: ignore[no-untyped-def]
    on_standard_plan(world.merchant_a)
    row = make_terminal(world, "SN-FUZZ-0001", Status.ACTIVE)
    pos = terminal_of(row, running)
    assert pos.sign_on().approved
    # The original the reversal base reverses: a valid sale, approved.
    original = pos.sale_fields(2_000, pan=CARD)
    assert pos.send_sale_fields(original).approved
    sale = codec.encode_with_mac(d.SALE, pos.sale_fields(12_345, pan=CARD), _mac(pos))
    reversal = codec.encode_with_mac(d.REVERSAL, _reversal_fields(pos, original), _mac(pos))
    sign_on = codec.encode_with_mac(  # a sign-on is MACed with the master key
        d.SIGN_ON, _sign_on_fields(pos), lambda data: paycrypto.mac(pos.scheme, pos.master_key, data)
    )
    pos.close()
    return World(
        running,
        row,
        pos,
        Base.of("sale", sale),
        Base.of("reversal", reversal),
        Base.of("sign-on", sign_on),
        valid_sales=1,
    )


@pytest.fixture
def fuzz(gateway, world) -> World:  # type: ignore[no-untyped-def]
    return _world(gateway, world)


@pytest.fixture
def fuzz_small(gateway_factory, world) -> World:  # type: ignore[no-untyped-def]
    return _world(gateway_factory(limits=SMALL), world)


# -- one probe: a new connection, some bytes, what came back -------------------------------------


@dataclass(frozen=True)
class Outcome:
    answer: codec.Message | None  # None: the gateway closed the connection without answering
    elapsed: float

    @property
    def code(self) -> str | None:
        return None if self.answer is None else self.answer.get("39")


def _read(sock: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        try:
            chunk = sock.recv(size - len(data))
        except ConnectionResetError:
            return None
        if not chunk:
            return None
        data += chunk
    return data


def probe(running: Running, stream: bytes, *, timeout: float = PROBE_TIMEOUT) -> Outcome:
    """Send ``stream`` as is on a new connection; the first answer, or None when the gateway closed it.
    Fails when neither happens within ``timeout``."""
    began = time.monotonic()
    with socket.create_connection((running.host, running.port), timeout=timeout) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.sendall(stream)
        except (BrokenPipeError, ConnectionResetError):  # closed while we were still sending
            return Outcome(None, time.monotonic() - began)
        try:
            head = _read(sock, 2)
            body = None if head is None else _read(sock, struct.unpack(">H", head)[0])
        except TimeoutError:
            pytest.fail(f"no answer and no close within {timeout} s for {stream.hex()}")
    elapsed = time.monotonic() - began
    assert elapsed < timeout + 0.5, f"{elapsed:.2f} s for {stream.hex()}"
    if body is None:
        return Outcome(None, elapsed)
    assert body[: d.TPDU_BYTES] == codec.answer_tpdu(TPDU)
    answer = codec.decode_any(body[d.TPDU_BYTES :])  # an answer a terminal can read (Malformed fails)
    assert answer.mti in d.ANSWER_OF.values(), answer
    assert answer.get("39"), answer
    return Outcome(answer, elapsed)


def framed(message: bytes) -> bytes:
    return codec.frame(TPDU, message)


# -- mutations -----------------------------------------------------------------------------------


def _bcd(value: int, size: int) -> bytes:
    return bytes.fromhex(f"{value:0{size * 2}d}")


def flip_bitmap_bits(base: Base) -> st.SearchStrategy[bytes]:
    offset, _prefix, _size = base.at["p"]

    def flip(bits: set[int]) -> bytes:
        out = bytearray(base.raw)
        for bit in bits:
            out[offset + bit // 8] ^= 0x80 >> (bit % 8)
        return bytes(out)

    return st.sets(st.integers(0, 63), min_size=1, max_size=4).map(flip)


def change_length_prefix(base: Base) -> st.SearchStrategy[bytes]:
    @st.composite
    def change(draw: st.DrawFn) -> bytes:
        name = draw(st.sampled_from(base.variable))
        offset, prefix, _size = base.at[name]
        new = draw(
            st.integers(0, 10 ** (2 * prefix) - 1).map(lambda n: _bcd(n, prefix))
            | st.binary(min_size=prefix, max_size=prefix)
        )
        return base.raw[:offset] + new + base.raw[offset + prefix :]

    return change()


def truncate(base: Base) -> st.SearchStrategy[bytes]:
    return st.integers(0, len(base.raw) - 1).map(lambda n: base.raw[:n])


def append(base: Base) -> st.SearchStrategy[bytes]:
    return st.binary(min_size=1, max_size=64).map(lambda extra: base.raw + extra)


def one_byte(base: Base) -> st.SearchStrategy[bytes]:
    def change(where: tuple[int, int]) -> bytes:
        out = bytearray(base.raw)
        out[where[0]] = where[1]
        return bytes(out)

    return st.tuples(st.integers(0, len(base.raw) - 1), st.integers(0, 255)).map(change)


def some_bytes(base: Base) -> st.SearchStrategy[bytes]:
    """Two to eight bytes changed anywhere."""

    def change(changes: list[tuple[int, int]]) -> bytes:
        out = bytearray(base.raw)
        for where, value in changes:
            out[where] = value
        return bytes(out)

    return st.lists(
        st.tuples(st.integers(0, len(base.raw) - 1), st.integers(0, 255)), min_size=2, max_size=8
    ).map(change)


def field_value(base: Base) -> st.SearchStrategy[bytes]:
    """One byte of a field's data changed to another its encoding allows (a BCD digit pair, printable
    ASCII): the message still decodes, so only the MAC (or the lookup) can refuse it."""
    names = [k for k in base.at if k not in {"t", "p", "64"}]
    bcd = st.builds(lambda hi, lo: hi * 16 + lo, st.integers(0, 9), st.integers(0, 9))
    text = st.integers(0x20, 0x7E)

    @st.composite
    def change(draw: st.DrawFn) -> bytes:
        name = draw(st.sampled_from(names))
        offset, size = base.data(name)
        where = offset + draw(st.integers(0, size - 1))
        value = draw(text if d.SPEC[name]["data_enc"] == "ascii" else bcd)
        return base.raw[:where] + bytes([value]) + base.raw[where + 1 :]

    return change()


def replace_mac(base: Base) -> st.SearchStrategy[bytes]:
    return st.binary(min_size=8, max_size=8).map(lambda mac: base.raw[:-8] + mac)


def unknown_tid(base: Base, known: str) -> st.SearchStrategy[bytes]:
    offset, size = base.data("41")
    tids = st.text(string.ascii_uppercase + string.digits, min_size=size, max_size=size).filter(
        lambda t: t != known
    )
    return tids.map(lambda tid: base.raw[:offset] + tid.encode() + base.raw[offset + size :])


def random_message() -> st.SearchStrategy[bytes]:
    """Random bytes, some starting with a message type of the dialect."""
    mtis = st.sampled_from([bytes.fromhex(m) for m in d.REQUIRED])
    return st.binary(max_size=200) | st.tuples(mtis, st.binary(max_size=200)).map(b"".join)


def message_mutations(base: Base, tid: str) -> st.SearchStrategy[bytes]:
    """Mutated messages of ``base``, to be framed correctly."""
    strategies = [
        flip_bitmap_bits(base),
        change_length_prefix(base),
        truncate(base),
        append(base),
        one_byte(base),
        field_value(base),
        field_value(base),
        some_bytes(base),
        unknown_tid(base, tid),
        random_message(),
    ]
    if "64" in base.at:
        strategies.append(replace_mac(base))
    return st.one_of(strategies)


def oversize_frames(base: Base, limit: int) -> st.SearchStrategy[bytes]:
    """Frames over the limit (closed unread), and messages padded to the limit exactly or one past it."""
    over = st.integers(limit + 1, 0xFFFF).map(lambda size: struct.pack(">H", size) + bytes(size))
    room = limit - d.TPDU_BYTES - len(base.raw)
    padded = st.sampled_from([room, room + 1]).flatmap(
        lambda n: st.binary(min_size=n, max_size=n).map(lambda pad: framed(base.raw + pad))
    )
    return over | padded


def streams(base: Base, tid: str, limit: int) -> st.SearchStrategy[tuple[bytes, bytes]]:
    """(the message as mutated, the bytes on the wire): mostly framed mutations, some oversize frames."""
    mutated = message_mutations(base, tid).map(lambda raw: (raw, framed(raw)))
    oversize = oversize_frames(base, limit).map(lambda wire: (wire[2 + d.TPDU_BYTES :], wire))
    return st.one_of(mutated, mutated, mutated, oversize)


# -- the properties ------------------------------------------------------------------------------


def good_terminal_served(w: World, *, sign_on: bool = False) -> None:
    """The good terminal, on a new connection, is approved a new sale (MACed answer)."""
    w.pos.connect(w.running.host, w.running.port, timeout=PROBE_TIMEOUT)
    try:
        if sign_on:
            assert w.pos.sign_on().approved
        reply = w.pos.sale(1_010 + w.valid_sales % 40, pan=CARD)  # no amount the issuer declines
        assert reply.approved, reply
        assert reply.mac_ok, reply
        w.valid_sales += 1
    finally:
        w.pos.close()


def check_financial(w: World, base: Base, mutated: bytes, outcome: Outcome) -> None:
    """A mutated sale or reversal is never approved; no message crashes its handler."""
    assert outcome.code != d.APPROVED, f"{base.name} mutated to {mutated.hex()} was approved"
    assert outcome.code != d.SYSTEM_ERROR, f"{base.name} mutated to {mutated.hex()}: 96"


def check_sign_on(w: World, mutated: bytes, outcome: Outcome) -> None:
    """A sign-on is not MACed: a mutated one may be approved only when it is still an unauthenticated
    request (a sign-on; a heartbeat when the MTI byte became 0820) of the same TID and MID."""
    assert outcome.code != d.SYSTEM_ERROR, f"sign-on mutated to {mutated.hex()}: 96"
    if outcome.code != d.APPROVED:
        return
    assert outcome.answer is not None
    try:
        message = codec.decode(mutated)
    except codec.Malformed as exc:
        pytest.fail(f"approved a sign-on that does not decode ({exc.reason}): {mutated.hex()}")
    # The sign-on is MACed with the master key: no mutation of it signs on. Only one that became a
    # heartbeat (its type byte 0800 → 0820, and no field 64) may be answered 00, as a heartbeat.
    assert message.mti == d.HEARTBEAT, f"a mutated sign-on was approved: {mutated.hex()}"
    assert (message.tid, message.mid) == (w.pos.tid, w.pos.mid), message
    assert outcome.answer.mti == d.ANSWER_OF[message.mti]
    assert (outcome.answer.tid, outcome.answer.mid) == (w.pos.tid, w.pos.mid)
    if message.mti == d.SIGN_ON:
        assert len(outcome.answer.get("62")) == 2 * (paycrypto.KEY_BYTES + 4)  # a session key, wrapped


def recorded_exactly(w: World) -> None:
    """The database holds the valid messages sent and nothing else."""
    rows = Transaction.objects.all()
    assert rows.filter(kind="sale", status="approved").count() == w.valid_sales
    assert rows.filter(kind="reversal", status="approved").count() == w.valid_reversals
    assert rows.count() == w.valid_sales + w.valid_reversals
    assert set(rows.values_list("tid", flat=True)) <= {w.row.tid}


def bases_still_valid(w: World, bases: list[Base]) -> None:
    """The unmutated bases are approved (so each refusal above was the mutation's doing)."""
    for base in bases:
        outcome = probe(w.running, framed(base.raw))
        assert outcome.code == d.APPROVED, (base.name, outcome)
        if base.name == "sale":
            w.valid_sales += 1
        elif base.name == "reversal":
            w.valid_reversals += 1


# -- the tests -----------------------------------------------------------------------------------


def test_mutated_sales_and_reversals_are_never_approved(fuzz: World, errors) -> None:  # type: ignore[no-untyped-def]
    w = fuzz
    bases = [w.sale, w.reversal]
    for base in bases:  # every truncation and every single bitmap bit, exhaustively
        for n in range(len(base.raw)):
            check_financial(w, base, base.raw[:n], probe(w.running, framed(base.raw[:n])))
        offset = base.at["p"][0]
        for bit in range(64):
            flipped = bytearray(base.raw)
            flipped[offset + bit // 8] ^= 0x80 >> (bit % 8)
            check_financial(w, base, bytes(flipped), probe(w.running, framed(bytes(flipped))))
    good_terminal_served(w)
    examples = 0

    @FUZZ
    @given(data=st.data())
    def mutate(data: st.DataObject) -> None:
        nonlocal examples
        base = data.draw(st.sampled_from(bases), label="base")
        mutated, wire = data.draw(
            streams(base, w.pos.tid, w.running.gateway.limits.max_message), label="wire"
        )
        assume(mutated != base.raw)
        check_financial(w, base, mutated, probe(w.running, wire))
        examples += 1
        if examples % CHECK_EVERY == 0:
            good_terminal_served(w)

    mutate()
    good_terminal_served(w)
    assert not errors, [r.getMessage() for r in errors]
    bases_still_valid(w, bases)
    recorded_exactly(w)
    assert w.running.gateway.counts.get(f"{d.REVERSAL}:{d.APPROVED}") == 1


def test_mutated_sign_ons_are_never_approved(fuzz: World, errors) -> None:  # type: ignore[no-untyped-def]
    w = fuzz
    base = w.sign_on
    for n in range(len(base.raw)):
        check_sign_on(w, base.raw[:n], probe(w.running, framed(base.raw[:n])))
    good_terminal_served(w, sign_on=True)
    examples = 0

    @FUZZ
    @given(data=st.data())
    def mutate(data: st.DataObject) -> None:
        nonlocal examples
        mutated, wire = data.draw(
            streams(base, w.pos.tid, w.running.gateway.limits.max_message), label="wire"
        )
        assume(mutated != base.raw)
        check_sign_on(w, mutated, probe(w.running, wire))
        examples += 1
        if examples % CHECK_EVERY == 0:
            good_terminal_served(w, sign_on=True)  # an approved mutation may have replaced the session key

    mutate()
    good_terminal_served(w, sign_on=True)
    assert not errors, [r.getMessage() for r in errors]
    bases_still_valid(w, [base])
    recorded_exactly(w)


def test_lying_frame_lengths_end_within_the_read_timeout(fuzz_small: World, errors) -> None:  # type: ignore[no-untyped-def]
    """A length prefix shorter than what follows, or longer (the read timeout ends the wait), and raw
    streams of random bytes: an answer or a close within the bound, never an approval."""
    w = fuzz_small
    limits = w.running.gateway.limits
    bases = [w.sale, w.reversal, w.sign_on]
    examples = 0

    @FRAMES
    @given(data=st.data())
    def lie(data: st.DataObject) -> None:
        nonlocal examples
        base = data.draw(st.sampled_from(bases), label="base")
        body = TPDU + base.raw
        kind = data.draw(st.sampled_from(["shorter", "shorter", "longer", "random"]), label="kind")
        if kind == "shorter":
            size = data.draw(st.integers(0, len(body) - 1), label="size")
            wire = struct.pack(">H", size) + body
        elif kind == "longer":
            size = data.draw(st.integers(len(body) + 1, limits.max_message), label="size")
            wire = struct.pack(">H", size) + body
        else:
            wire = data.draw(st.binary(min_size=2, max_size=300), label="stream")
        outcome = probe(w.running, wire)
        assert outcome.code != d.APPROVED, wire.hex()
        assert outcome.code != d.SYSTEM_ERROR, wire.hex()
        if kind == "longer":  # nothing to answer until the read timeout ends the wait
            assert outcome.answer is None
            assert limits.read_timeout * 0.8 <= outcome.elapsed <= limits.read_timeout + 2, outcome.elapsed
        examples += 1
        if examples % CHECK_EVERY == 0:
            good_terminal_served(w)

    lie()
    good_terminal_served(w)
    assert not errors, [r.getMessage() for r in errors]
    recorded_exactly(w)


# -- keys and merchants that do not match --------------------------------------------------------


def test_a_sale_maced_with_another_terminals_session_key_is_refused(gateway, world) -> None:  # type: ignore[no-untyped-def]
    on_standard_plan(world.merchant_a)
    mine = terminal_of(make_terminal(world, "SN-FUZZ-0001", Status.ACTIVE), gateway)
    other = terminal_of(make_terminal(world, "SN-FUZZ-0002", Status.ACTIVE), gateway)
    assert mine.sign_on().approved
    assert other.sign_on().approved
    assert mine.session_key != other.session_key
    fields = mine.sale_fields(500, pan=CARD)
    signed = codec.encode_with_mac(d.SALE, fields, _mac(other))  # my TID, the other's session key
    answer = mine.exchange(signed)
    assert answer.get("39") == d.MAC_FAILURE
    assert "64" not in answer.fields  # nothing to MAC it with: the request's key is not trusted
    assert not Transaction.objects.exists()
    assert mine.send_sale_fields(fields).approved  # the same sale, MACed with its own key


def test_a_terminal_of_another_merchant_is_not_permitted(gateway, world) -> None:  # type: ignore[no-untyped-def]
    on_standard_plan(world.merchant_a)
    on_standard_plan(world.merchant_b)
    row = make_terminal(world, "SN-FUZZ-B001", Status.ACTIVE, merchant=world.merchant_b)
    theirs = terminal_of(row, gateway)
    assert theirs.sign_on().approved  # a session key of its own, valid
    theirs.mid = world.merchant_a.mid  # but the sale names merchant A
    reply = theirs.sale(500, pan=CARD)
    assert reply.code == d.NOT_PERMITTED
    assert theirs.sign_on().code == d.NOT_PERMITTED
    assert not Transaction.objects.exists()
