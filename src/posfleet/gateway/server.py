"""``posfleet gateway``: the asyncio server terminals talk ISO 8583 to (docs/gateway.md).

One coroutine per connection reads frames (2-byte length, TPDU, message) with an idle timeout between
messages and a read timeout within one, refuses frames over ``MAX_MESSAGE`` by closing, and answers
each message in order. The database reads of a message run in a small thread pool (``gate.py``) —
a financial message's checks together with those of the messages that arrived with it; the issuer is
asked over the network (``issuer.py``) with no transaction open; the approvals and their postings are
written in groups by the poster — a process of its own that the event loop talks to over a pipe
(``poster.py``, ADR 0039 and 0041: the money code's Python then runs beside the event loop instead of
taking turns with it) or, in-process, a thread. Whatever goes wrong inside one message answers ``96``
to that message only; nothing a terminal sends can stop the server or another connection, and no
path that fails answers ``00``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeVar

from django.db import connection, connections
from django.utils.timezone import localtime

from posfleet.gateway import codec, gate
from posfleet.gateway import dialect as d
from posfleet.gateway import poster as posters
from posfleet.gateway.issuer import HostIssuer
from posfleet.platform import clock, paycrypto

log = logging.getLogger("posfleet.gateway")
POSTING_GROUP = 500  # at most this many postings in one transaction
ADMIT_GROUP = 64  # at most this many financial messages checked in one trip to a reader thread
T = TypeVar("T")


@dataclass(frozen=True)
class Limits:
    max_connections: int = 2000
    idle_timeout: float = 300.0  # seconds between two messages of a connection
    read_timeout: float = 5.0  # seconds to receive the rest of a message once it began
    max_message: int = d.MAX_MESSAGE


Poster = Literal["process", "thread"]


class Gateway:
    def __init__(
        self,
        *,
        issuer: HostIssuer,
        limits: Limits | None = None,
        threads: int | None = None,
        poster: Poster = "thread",
    ) -> None:
        self.issuer = issuer
        self.limits = limits or Limits()
        # Readers (the gate's look, keys, heartbeats, sign-ons) in a pool; the postings one group at a
        # time in the poster, so that a group is written while the next messages are read (SQLite's
        # WAL lets readers go on while one writer writes). ``posfleet gateway`` runs the poster in a
        # process of its own (ADR 0039); in-process (the tests' servers) it is a thread.
        self.threads = threads or 4
        self.pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="gateway-db")
        self.poster = poster
        self.writer: posters.Poster = self._new_writer()
        self.connections = 0
        self._clients: set[asyncio.StreamWriter] = set()  # the terminals' open connections
        self.counts: dict[str, int] = {}
        self._wrappers: set[Any] = set()  # the database connections of the worker threads
        self._wrappers_lock = threading.Lock()
        self._postings: asyncio.Queue[tuple[gate.View, gate.Posting, asyncio.Future[tuple[str, int | None]]]]
        self._poster: asyncio.Task[None] | None = None
        self._admissions: asyncio.Queue[tuple[codec.Message, asyncio.Future[Admitted]]]
        self._admitters: list[asyncio.Task[None]] = []

    def _new_writer(self) -> posters.Poster:
        if self.poster == "process":
            return posters.ProcessPoster()
        return posters.ThreadPoster(self._db)

    def close(self) -> None:
        """Finish every database job, then close the connections the worker threads opened."""
        self.pool.shutdown(wait=True)
        self.writer.close()
        with self._wrappers_lock:
            wrappers, self._wrappers = list(self._wrappers), set()
        for wrapper in wrappers:
            wrapper.inc_thread_sharing()  # the thread that opened it is gone
            try:
                wrapper.close()
            finally:
                wrapper.dec_thread_sharing()

    # -- the database, off the event loop --------------------------------------------------------

    async def _db(self, fn: Callable[..., T], *args: Any, pool: ThreadPoolExecutor | None = None) -> T:
        def run() -> T:
            # Each worker thread keeps its connection for the life of the process (opening one costs
            # more than a message); one that failed is closed below and reopened by the next message.
            try:
                return fn(*args)
            except Exception:
                connection.close()  # a broken connection is not reused by the next message
                raise
            finally:
                with self._wrappers_lock:
                    self._wrappers.update(connections.all(initialized_only=True))

        return await asyncio.get_running_loop().run_in_executor(pool or self.pool, run)

    # -- connections -----------------------------------------------------------------------------

    async def serve(self, host: str, port: int) -> asyncio.Server:
        # The poster is up (a child has set Django up) before the first terminal is answered.
        await self.writer.ready()
        self._postings = asyncio.Queue()
        self._poster = asyncio.create_task(self._post_forever())
        self._admissions = asyncio.Queue()
        self._admitters = [asyncio.create_task(self._admit_forever()) for _ in range(self.threads)]
        return await asyncio.start_server(self._connection, host, port, backlog=512)

    async def stop(self, grace: float = 5.0) -> None:
        """After the listening socket is closed: close every terminal's connection (a message being
        answered finishes first, within ``grace`` seconds) and the issuer links. Then ``close``."""
        for writer in list(self._clients):
            writer.close()  # its reader ends: the connection's coroutine returns
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self.connections and loop.time() < deadline:
            await asyncio.sleep(0.01)
        await self.issuer.aclose()

    # -- a financial message's checks, grouped ----------------------------------------------------

    async def _admit(self, message: codec.Message) -> Admitted:
        future: asyncio.Future[Admitted] = asyncio.get_running_loop().create_future()
        self._admissions.put_nowait((message, future))
        return await future

    async def _admit_forever(self) -> None:
        """Check the financial messages that wait, together (``_admit_many``: two queries for all of
        them); one such task per reader thread, so a lone message is checked at once."""
        while True:
            group = [await self._admissions.get()]
            while not self._admissions.empty() and len(group) < ADMIT_GROUP:
                group.append(self._admissions.get_nowait())
            try:
                admitted = await self._db(_admit_many, [message for message, _future in group])
            except Exception as exc:  # each waiting message answers 96 (server.answer)
                admitted = [exc] * len(group)
            for (_message, future), each in zip(group, admitted, strict=True):
                if future.done():
                    continue
                if isinstance(each, Exception):
                    future.set_exception(each)
                else:
                    future.set_result(each)

    # -- postings, grouped -------------------------------------------------------------------------

    async def _post(self, view: gate.View, posting: gate.Posting) -> tuple[str, int | None]:
        future: asyncio.Future[tuple[str, int | None]] = asyncio.get_running_loop().create_future()
        await self._postings.put((view, posting, future))
        return await future

    async def _post_forever(self) -> None:
        """Write the postings that wait, together: one transaction (and one money lock) for all that
        came while the previous group was written — no waiting to fill a group, so a lone sale is
        written at once."""
        while True:
            group = [await self._postings.get()]
            while not self._postings.empty() and len(group) < POSTING_GROUP:
                group.append(self._postings.get_nowait())
            items = [(view.terminal_id, posting) for view, posting, _f in group]
            if getattr(self.writer, "dead", False):  # ended while idle: this group goes to a new one
                await self._replace_writer()
            try:
                answers = await self.writer.post(items)
            except posters.PosterDied as exc:
                await self._poster_died(group, exc)
                continue
            except Exception as exc:  # each waiting message answers 96 (server.answer), none is lost
                for _view, _posting, future in group:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_view, _posting, future), answer in zip(group, answers, strict=True):
                if not future.done():
                    future.set_result(answer)

    async def _replace_writer(self) -> None:
        log.error("gateway: the poster process stopped; starting another")
        broken, self.writer = self.writer, self._new_writer()
        await asyncio.get_running_loop().run_in_executor(None, broken.close)  # reaped, off the loop

    async def _poster_died(
        self,
        group: list[tuple[gate.View, gate.Posting, asyncio.Future[tuple[str, int | None]]]],
        exc: Exception,
    ) -> None:
        """The poster process died while writing ``group``: its transaction either committed (just
        before the death) or rolled back. Read back which: a posting recorded answers ``00`` with its
        id, one not recorded fails (``96``, reversed at the issuer). Then start another poster."""
        await self._replace_writer()
        try:
            found = await self._db(gate.recorded_ids, [posting for _view, posting, _f in group])
        except Exception:  # the database cannot tell: fail them all (96), as any posting failure
            found = [None] * len(group)
        for (_view, _posting, future), transaction_id in zip(group, found, strict=True):
            if future.done():
                continue
            if transaction_id is None:
                future.set_exception(exc)
            else:
                future.set_result((d.APPROVED, transaction_id))

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.connections >= self.limits.max_connections:
            self._count("refused_connection")
            writer.close()
            return
        self.connections += 1
        self._clients.add(writer)
        try:
            while True:
                try:
                    head = await asyncio.wait_for(reader.readexactly(2), self.limits.idle_timeout)
                    (size,) = struct.unpack(">H", head)
                    if size < d.TPDU_BYTES + 2 or size > self.limits.max_message:
                        self._count("bad_frame")
                        return
                    body = await asyncio.wait_for(reader.readexactly(size), self.limits.read_timeout)
                except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                    return
                tpdu, raw = body[: d.TPDU_BYTES], body[d.TPDU_BYTES :]
                answer = await self.answer(raw)
                if answer is None:
                    self._count("undecodable")
                    return
                writer.write(codec.frame(codec.answer_tpdu(tpdu), answer))
                await writer.drain()
        except ConnectionError:
            return
        finally:
            self.connections -= 1
            self._clients.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    # -- messages --------------------------------------------------------------------------------

    async def answer(self, raw: bytes) -> bytes | None:
        """The encoded answer to one message; None when not even its type could be read."""
        try:
            message = codec.decode(raw)
        except codec.Malformed as exc:
            if not exc.mti:
                return None
            self._count(f"{exc.mti}:{d.FORMAT_ERROR}")
            return _plain(exc.mti, exc.fields, d.FORMAT_ERROR)
        try:
            handler = _HANDLERS[message.mti]
            answer = await handler(self, message)
        except Exception:
            log.exception("gateway: %s from TID %s failed", message.mti, message.tid)
            answer = _plain(message.mti, message.fields, d.SYSTEM_ERROR)
        return answer

    async def sign_on(self, message: codec.Message) -> bytes:
        code, view = await self._db(gate.look, message.tid, message.mid)
        if code != d.APPROVED or view is None:
            return self._decline(message, code)
        session = await self._db(gate.sign_on, view, message.mac_data, bytes.fromhex(message.get("64")))
        if session is None:
            return self._decline(message, d.MAC_FAILURE)
        self._count(f"{message.mti}:{d.APPROVED}")
        now = localtime(clock.now())
        return codec.encode(
            d.SIGN_ON_ANSWER,
            {
                **_echo(message, ("11", "41", "42", "60")),
                "12": now.strftime("%H%M%S"),
                "13": now.strftime("%m%d"),
                "39": d.APPROVED,
                "62": (session.wrapped + session.kcv).hex().upper(),
            },
        )

    async def heartbeat(self, message: codec.Message) -> bytes:
        code, view = await self._db(gate.look, message.tid, message.mid)
        if view is not None:
            firmware, location = _heartbeat_data(message.get("63"))
            if not await self._db(gate.heartbeat, view.terminal_id, firmware, location):
                return self._plain_count(message, d.FORMAT_ERROR)
        return self._decline(message, code) if code != d.APPROVED else self._plain_count(message, d.APPROVED)

    async def financial(self, message: codec.Message) -> bytes:
        code, view, keys, posting = await self._admit(message)
        if keys is None or view is None:
            return self._decline(message, code)
        algorithm, key = keys
        if posting is None:
            return self._answer(message, code, algorithm, key)
        if message.mti == d.SALE:
            verdict = await self.issuer.authorise(message.fields)
            if verdict.code != d.APPROVED:
                declined = await self._declined(view, posting, verdict.code)
                return self._answer(message, declined, algorithm, key)
            auth_code = verdict.auth_code or "000000"
        else:
            auth_code = ""
        try:
            code, transaction_id = await self._post(view, posting)
        except Exception:
            if message.mti == d.SALE:  # not recorded: what the host approved must not stand
                await self.issuer.reverse(message.fields)
            raise
        if code != d.APPROVED:
            if message.mti == d.SALE and code != d.DUPLICATE:
                await self.issuer.reverse(message.fields)  # the host approved what we may not
            return self._answer(message, code, algorithm, key)
        if message.mti == d.REVERSAL:
            await self.issuer.reverse(message.fields)
        extra = {"37": f"{transaction_id or 0:012d}"}
        if auth_code:
            extra["38"] = auth_code[:6].rjust(6, "0")
        return self._answer(message, d.APPROVED, algorithm, key, extra)

    async def _declined(self, view: gate.View, posting: gate.Posting, code: str) -> str:
        """The answer to a sale the issuer declined, recorded as declined (no money moves; the decline
        rates read them) unless its outcome is unknown (the host did not answer: nothing to record)."""
        if code in (d.ISSUER_UNAVAILABLE, d.SYSTEM_ERROR):
            return code
        recorded, _transaction_id = await self._post(
            view, replace(posting, status="declined", response_code=code)
        )
        return code if recorded == d.APPROVED else recorded

    # -- answers ---------------------------------------------------------------------------------

    def _decline(self, message: codec.Message, code: str) -> bytes:
        return self._plain_count(message, code)

    def _plain_count(self, message: codec.Message, code: str) -> bytes:
        self._count(f"{message.mti}:{code}")
        return _plain(message.mti, message.fields, code)

    def _answer(
        self,
        message: codec.Message,
        code: str,
        algorithm: paycrypto.Algorithm,
        key: bytes,
        extra: dict[str, str] | None = None,
    ) -> bytes:
        """A financial answer, MACed with the session key the request was MACed with."""
        self._count(f"{message.mti}:{code}")
        fields = {
            **_echo(message, ("3", "4", "11", "12", "13", "25", "41", "42", "49", "60")),
            **(extra or {}),
            "39": code,
        }
        return codec.encode_with_mac(
            d.ANSWER_OF[message.mti], fields, lambda data: paycrypto.mac(algorithm, key, data)
        )


def _echo(message: codec.Message, names: tuple[str, ...]) -> dict[str, str]:
    return {name: message.fields[name] for name in names if name in message.fields}


def _plain(mti: str, fields: dict[str, str], code: str) -> bytes:
    """An answer without a MAC (the request's could not be checked): only the fields that identify it."""
    echo: dict[str, str] = {n: fields[n] for n in ("11", "41", "42") if n in fields and _fits(n, fields[n])}
    return codec.encode(d.ANSWER_OF.get(mti, d.SALE_ANSWER), {**echo, "39": code})


def _fits(name: str, value: str) -> bool:
    if name == "11":
        return len(value) == 6 and value.isdigit()
    if name == "41":
        return len(value) == 8 and value.isascii() and value.isprintable()
    if name == "42":
        return len(value) == 15 and value.isascii() and value.isprintable()
    return False


def _heartbeat_data(text: str) -> tuple[str, dict[str, float] | None]:
    """``LAT=31.2304;LON=121.4737;FW=2.1.0`` → firmware and location (either may be missing)."""
    parts = dict(p.split("=", 1) for p in text.split(";") if "=" in p)
    firmware = parts.get("FW", "")[:32]
    try:
        location = {"lat": float(parts["LAT"]), "lon": float(parts["LON"])}
    except (KeyError, ValueError):
        location = None
    if location is not None and not (-90 <= location["lat"] <= 90 and -180 <= location["lon"] <= 180):
        location = None
    return firmware, location


Admitted = tuple[str, gate.View | None, tuple[paycrypto.Algorithm, bytes] | None, gate.Posting | None]


def _admit_many(messages: list[codec.Message]) -> list[Admitted | Exception]:
    """The checks of financial messages before the issuer is asked, for the messages that arrived
    together, in one trip to a database thread: the terminals (``gate.look_many``, one query: ``58``,
    ``03``), each MAC under its terminal's session key (``A0``; no keys returned, so the answer carries
    no MAC), each content (``30``), and which are recorded already (one query: ``94``); ``00`` with the
    terminal's view, the keys and the posting. What fails for one message (an exception in its place)
    answers ``96`` to it alone; a failed query fails them all (``_db``)."""
    admitted: list[Admitted | Exception] = []
    looked = gate.look_many([(m.tid, m.mid) for m in messages])
    for message, (code, view) in zip(messages, looked, strict=True):
        try:
            admitted.append(_checked(message, code, view))
        except Exception as exc:
            admitted.append(exc)
    candidates = [a[3] for a in admitted if not isinstance(a, Exception) and a[3] is not None]
    recorded = gate.already_recorded(candidates) if candidates else set()
    for i, each in enumerate(admitted):
        if isinstance(each, Exception):
            continue
        _code, view, keys, posting = each
        if posting is not None and gate.natural_key(posting) in recorded:
            admitted[i] = (d.DUPLICATE, view, keys, None)
    return admitted


def _checked(message: codec.Message, code: str, view: gate.View | None) -> Admitted:
    if code != d.APPROVED or view is None:
        return code, view, None, None
    keys = gate.session_key(view)
    if keys is None:
        return d.MAC_FAILURE, view, None, None
    algorithm, key = keys
    if not paycrypto.verify_mac(algorithm, key, message.mac_data, bytes.fromhex(message.get("64"))):
        return d.MAC_FAILURE, view, None, None
    posting = _posting(message)
    if posting is None:
        return d.FORMAT_ERROR, view, keys, None
    return d.APPROVED, view, keys, posting


def _posting(message: codec.Message) -> gate.Posting | None:
    """The sale or reversal a valid financial message asks for; None when its content is invalid."""
    amount = int(message.get("4") or 0)
    pan, code = message.get("2"), message.get("48")
    entry = message.get("22")
    how = d.ENTRY_MODES.get(entry[:2])
    if amount <= 0 or how is None or message.get("3") != "000000":
        return None
    if message.mti == d.SALE and (bool(pan) == bool(code) or (how == "scan") != bool(code)):
        return None  # a card sale carries a card number, a scanned one a payment code, never both
    _type, batch, _net = codec.field60(message)
    at = codec.local_datetime(message, localtime(clock.now()))
    original = None
    kind = "sale"
    if message.mti == d.REVERSAL:
        value = message.get("61")
        if len(value) != 16:
            return None
        original_date = codec.month_day(value[12:16], at)
        if original_date is None:
            return None
        original = (message.tid, value[:6], value[6:12], original_date)
        kind = "reversal"
    return gate.Posting(
        tid=message.tid,
        batch_no=batch,
        trace_no=message.get("11"),
        txn_date=at.date(),
        method=d.method_of(entry, pan),
        entry_mode=how,
        amount_fen=amount,
        card_masked=codec.masked(pan),
        kind=kind,
        original=original,
    )


_HANDLERS: dict[str, Callable[[Gateway, codec.Message], Any]] = {
    d.SIGN_ON: Gateway.sign_on,
    d.SALE: Gateway.financial,
    d.REVERSAL: Gateway.financial,
    d.HEARTBEAT: Gateway.heartbeat,
}
