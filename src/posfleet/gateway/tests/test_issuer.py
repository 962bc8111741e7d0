"""The issuer link (``HostIssuer``) against small hosts on loopback that misbehave as real ones can:
closing a kept connection, answering another request. No database."""

from __future__ import annotations

import asyncio
import struct
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from posfleet.gateway import codec
from posfleet.gateway import dialect as d
from posfleet.gateway.issuer import TPDU, HostIssuer
from posfleet.testing.servers import free_port

SALE = {"3": "000000", "4": "000000001000", "11": "000123", "41": "10000001", "42": "100000000000001"}
Answer = Callable[[codec.Message], dict[str, str]]


async def _with_host(
    answer: Answer, close_after: bool, test: Callable[[HostIssuer], Awaitable[None]]
) -> None:
    port = free_port()
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            while True:
                size = struct.unpack(">H", await reader.readexactly(2))[0]
                message = codec.decode_any((await reader.readexactly(size))[d.TPDU_BYTES :])
                writer.write(codec.frame(TPDU, codec.encode(d.SALE_ANSWER, answer(message))))
                await writer.drain()
                if close_after:
                    break
        except asyncio.IncompleteReadError:
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    issuer = HostIssuer("127.0.0.1", port, timeout=1.0)
    try:
        await test(issuer)
    finally:
        await issuer.aclose()
        server.close()


def _run(scenario: Coroutine[Any, Any, None]) -> None:
    """Run ``scenario`` on an event loop of its own, in a thread: the suite's own loop (a browser test's,
    say) may be running in this one."""
    failed: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(scenario)
        except BaseException as exc:  # re-raised in the test's thread
            failed.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(30)
    assert not thread.is_alive(), "the scenario did not end"
    if failed:
        raise failed[0]


def _echo(message: codec.Message) -> dict[str, str]:
    return {**{k: message.fields[k] for k in ("11", "41") if k in message.fields}, "39": "00", "38": "123456"}


def test_a_connection_the_host_closed_is_not_reused() -> None:
    async def test(issuer: HostIssuer) -> None:
        for _ in range(3):
            assert (await issuer.authorise(SALE)).code == d.APPROVED
            await asyncio.sleep(0.05)  # the host's close has arrived
        assert issuer.opened == 3  # each kept link was found closed and replaced, no sale failed

    _run(_with_host(_echo, True, test))


def test_a_kept_connection_serves_the_next_requests() -> None:
    async def test(issuer: HostIssuer) -> None:
        answers = await asyncio.gather(
            *(issuer.authorise(dict(SALE, **{"11": f"{n:06d}"})) for n in range(5))
        )
        assert [a.code for a in answers] == [d.APPROVED] * 5
        opened = issuer.opened
        for n in range(5):
            assert (await issuer.authorise(dict(SALE, **{"11": f"{n + 10:06d}"}))).code == d.APPROVED
        assert issuer.opened == opened  # the five concurrent links were kept and reused

    _run(_with_host(_echo, False, test))


def test_an_answer_to_another_request_is_no_answer() -> None:
    def wrong(message: codec.Message) -> dict[str, str]:
        return {**_echo(message), "11": "999999"}

    async def test(issuer: HostIssuer) -> None:
        assert (await issuer.authorise(SALE)).code == d.ISSUER_UNAVAILABLE  # and a reversal was sent
        assert not issuer._idle  # the link that carried it is dropped

    _run(_with_host(wrong, False, test))
