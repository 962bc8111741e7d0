"""The issuer side: the adapter the gateway asks before it approves, and a local simulator of the host.

``HostIssuer`` speaks the gateway's own framing and dialect to an upstream host over TCP, over
connections it keeps open between requests (a pool: one request at a time on each, up to ``keep``
idle ones kept; a production link would add its own zone keys). A connection that failed, timed out
or that the host closed is dropped, never reused: a late answer cannot be read as the answer to the
next request. A host that does not answer within ``timeout`` is "unknown": the gateway declines
(``91``) and sends the host a reversal of that sale, so nothing the host may have approved stays
approved. A request is never sent twice (on a connection that turns out dead after the request was
written, the outcome is unknown as for a timeout).

``posfleet simulate issuer`` runs ``serve_simulator``: it approves, declines by rules on the amount,
answers late or never, so the tests and the demo exercise every path:

=============================  ====================================
amount in fen ends in           answer
=============================  ====================================
``51``                          ``51`` insufficient funds
``05``                          ``05`` do not honour
``68``                          never (the gateway times out)
``77``                          approved, but after ``late`` seconds
anything else                   ``00`` with an authorisation code
=============================  ====================================
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import secrets
import struct
from dataclasses import dataclass

from posfleet.gateway import codec
from posfleet.gateway import dialect as d

TPDU = b"\x60\x00\x01\x00\x00"


@dataclass(frozen=True)
class Answer:
    code: str
    auth_code: str = ""


Link = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class HostIssuer:
    def __init__(self, host: str, port: int, *, timeout: float = 2.0, keep: int = 32) -> None:
        self.host, self.port, self.timeout, self.keep = host, port, timeout, keep
        self._idle: collections.deque[Link] = collections.deque()
        self.opened = 0  # connections opened so far (the tests check that they are reused)

    async def _link(self) -> Link:
        """An idle connection the host has not closed, or a new one."""
        while self._idle:
            reader, writer = self._idle.pop()
            if not reader.at_eof() and not writer.is_closing():
                return reader, writer
            writer.close()
        self.opened += 1
        return await asyncio.open_connection(self.host, self.port)

    async def _ask(self, mti: str, fields: dict[str, str]) -> codec.Message | None:
        link: Link | None = None
        try:
            async with asyncio.timeout(self.timeout):
                link = await self._link()
                reader, writer = link
                writer.write(codec.frame(TPDU, codec.encode(mti, fields)))
                await writer.drain()
                size = struct.unpack(">H", await reader.readexactly(2))[0]
                body = await reader.readexactly(size)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, struct.error):
            if link is not None:
                await _close(link)
            return None
        try:
            answer = codec.decode_any(body[d.TPDU_BYTES :])
        except codec.Malformed:
            answer = None
        if answer is None or any(answer.get(name) != fields.get(name, "") for name in ("11", "41")):
            await _close(link)  # not the answer to this request: nothing on this link can be trusted
            return None
        if len(self._idle) < self.keep:
            self._idle.append(link)
        else:
            await _close(link)
        return answer

    async def aclose(self) -> None:
        """Close the idle connections (when the gateway stops)."""
        while self._idle:
            await _close(self._idle.pop())

    async def authorise(self, fields: dict[str, str]) -> Answer:
        """Ask the host to approve a sale (the request's fields, MAC removed)."""
        request = {k: v for k, v in fields.items() if k != "64"}
        answer = await self._ask(d.SALE, request)
        if answer is None:
            await self.reverse(request)
            return Answer(d.ISSUER_UNAVAILABLE)
        return Answer(answer.get("39", d.SYSTEM_ERROR), answer.get("38"))

    async def reverse(self, fields: dict[str, str]) -> bool:
        """Tell the host to undo a sale; True when it acknowledged."""
        request = {k: v for k, v in fields.items() if k not in {"64", "61"}}
        original = fields.get("60", "")[2:8] + fields.get("11", "") + fields.get("13", "0000")
        answer = await self._ask(d.REVERSAL, {**request, "61": fields.get("61") or original})
        return answer is not None and answer.get("39") == d.APPROVED


async def _close(link: Link) -> None:
    _reader, writer = link
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


# -- the simulator -----------------------------------------------------------------------------


async def _simulated_answer(message: codec.Message, late: float) -> dict[str, str] | None:
    amount = int(message.get("4") or 0)
    tail = amount % 100
    base: dict[str, str] = {k: message.fields[k] for k in ("3", "4", "11", "41", "42") if k in message.fields}
    if message.mti == d.REVERSAL:
        return {**base, "39": d.APPROVED}
    if tail == 68:
        return None
    if tail == 77:
        await asyncio.sleep(late)
    if tail == 51:
        return {**base, "39": d.INSUFFICIENT_FUNDS}
    if tail == 5:
        return {**base, "39": d.DO_NOT_HONOUR}
    return {**base, "39": d.APPROVED, "38": f"{secrets.randbelow(10**6):06d}"}


async def serve_simulator(host: str, port: int, *, late: float = 3.0) -> asyncio.Server:
    """Start the issuer simulator; the caller runs the loop (``serve_forever``)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                size = struct.unpack(">H", await reader.readexactly(2))[0]
                body = await reader.readexactly(size)
                try:
                    message = codec.decode_any(body[d.TPDU_BYTES :])
                except codec.Malformed:
                    return
                fields = await _simulated_answer(message, late)
                if fields is None:
                    await asyncio.sleep(3600)
                    return
                mti = d.ANSWER_OF.get(message.mti, d.SALE_ANSWER)
                writer.write(codec.frame(codec.answer_tpdu(body[: d.TPDU_BYTES]), codec.encode(mti, fields)))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, struct.error):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)
