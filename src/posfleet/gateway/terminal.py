"""A terminal's side of the dialect (docs/gateway.md): sign on, sell, reverse, beat. The simulator
(``posfleet simulate terminals``), the tests and the benchmark play terminals with it; it is also the
reference client for someone writing a terminal from the documentation.

Blocking sockets, one connection per terminal, one message at a time (as a POS terminal does). Each
message is also available as two halves with no I/O — ``*_request`` builds the bytes, ``*_reply`` reads
the answer — so a client with its own I/O (the asyncio simulator, the benchmark) speaks the same dialect.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, field
from datetime import datetime

from django.utils.timezone import localtime

from posfleet.gateway import codec
from posfleet.gateway import dialect as d
from posfleet.platform import clock, paycrypto

TPDU = b"\x60\x00\x00\x00\x01"  # ID 60, destination NII 0000, source 0001


class GatewayError(RuntimeError):
    """The gateway closed the connection or answered what a terminal cannot read."""


@dataclass
class Reply:
    code: str
    fields: dict[str, str]
    mac_ok: bool | None = None  # None: the answer carried no MAC

    @property
    def approved(self) -> bool:
        return self.code == d.APPROVED


@dataclass
class Terminal:
    tid: str
    mid: str
    master_key: bytes
    scheme: paycrypto.Algorithm = paycrypto.Algorithm.X919
    batch_no: str = "000001"
    trace: int = 0
    session_key: bytes | None = field(default=None, repr=False)
    sock: socket.socket | None = field(default=None, repr=False)

    # -- connection --------------------------------------------------------------------------------

    def connect(self, host: str, port: int, *, timeout: float = 10.0) -> None:
        self.close()
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def exchange(self, message: bytes) -> codec.Message:
        """Send one message, read its answer (any dialect message: answers are not checked as requests)."""
        if self.sock is None:
            raise GatewayError("not connected")
        self.sock.sendall(codec.frame(TPDU, message))
        head = self._read(2)
        body = self._read(struct.unpack(">H", head)[0])
        return read_answer(body[d.TPDU_BYTES :])

    def _read(self, size: int) -> bytes:
        assert self.sock is not None
        chunks = b""
        while len(chunks) < size:
            chunk = self.sock.recv(size - len(chunks))
            if not chunk:
                raise GatewayError("the gateway closed the connection")
            chunks += chunk
        return chunks

    # -- messages ----------------------------------------------------------------------------------

    def next_trace(self) -> str:
        self.trace = self.trace % 999_999 + 1
        return f"{self.trace:06d}"

    def _stamp(self, at: datetime | None) -> dict[str, str]:
        at = at or localtime(clock.now())  # the terminal's clock, in local time
        return {"12": at.strftime("%H%M%S"), "13": at.strftime("%m%d")}

    def sign_on_request(self, at: datetime | None = None) -> bytes:
        fields = {
            "11": self.next_trace(),
            **self._stamp(at),
            "41": self.tid,
            "42": self.mid,
            "60": d.TYPE_SIGN_ON + self.batch_no + d.NET_SIGN_ON,
        }
        # MACed with the master key: only the terminal that holds it can sign on
        return codec.encode_with_mac(
            d.SIGN_ON, fields, lambda data: paycrypto.mac(self.scheme, self.master_key, data)
        )

    def sign_on_reply(self, answer: codec.Message) -> Reply:
        """Read a 0810: on approval, unwrap and check the session key and keep it."""
        reply = Reply(answer.get("39"), answer.fields)
        if reply.approved:
            block = bytes.fromhex(answer.get("62"))
            wrapped, check = block[: paycrypto.KEY_BYTES], block[paycrypto.KEY_BYTES :]
            key = paycrypto.unwrap(self.scheme, self.master_key, wrapped)
            if paycrypto.kcv(self.scheme, key, length=len(check)) != check:
                raise GatewayError("the session key's check value does not match")
            self.session_key = key
        return reply

    def sign_on(self, at: datetime | None = None) -> Reply:
        return self.sign_on_reply(self.exchange(self.sign_on_request(at)))

    def financial_request(self, mti: str, fields: dict[str, str]) -> bytes:
        """A sale or reversal MACed with the session key (before a sign-on: a MAC the gateway refuses)."""
        key = self.session_key or bytes(paycrypto.KEY_BYTES)
        try:
            return codec.encode_with_mac(mti, fields, lambda data: paycrypto.mac(self.scheme, key, data))
        except paycrypto.InvalidKey:  # no session yet: send a MAC the gateway will refuse
            return codec.encode(mti, {**fields, "64": "00" * 8})

    def financial_reply(self, answer: codec.Message, *, check_mac: bool = True) -> Reply:
        mac_ok = None
        if check_mac and "64" in answer.fields and self.session_key is not None:
            mac_ok = paycrypto.verify_mac(
                self.scheme, self.session_key, answer.mac_data, bytes.fromhex(answer.get("64"))
            )
        return Reply(answer.get("39"), answer.fields, mac_ok)

    def _financial(self, mti: str, fields: dict[str, str]) -> Reply:
        return self.financial_reply(self.exchange(self.financial_request(mti, fields)))

    def sale_fields(
        self,
        amount_fen: int,
        *,
        pan: str = "",
        qr_code: str = "",
        entry_mode: str = "051",
        trace: str | None = None,
        at: datetime | None = None,
    ) -> dict[str, str]:
        fields = {
            "3": "000000",
            "4": f"{amount_fen:012d}",
            "11": trace or self.next_trace(),
            **self._stamp(at),
            "22": entry_mode,
            "25": "00",
            "41": self.tid,
            "42": self.mid,
            "49": d.CURRENCY_CNY,
            "60": d.TYPE_SALE + self.batch_no + d.NET_NONE,
        }
        if pan:
            fields["2"] = pan
        if qr_code:
            fields["48"] = qr_code
        return fields

    def sale(self, amount_fen: int, **kwargs: object) -> Reply:
        """A card sale (``pan``, entry mode ``051`` chip by default) or a scanned one (``qr_code``,
        entry mode ``031``)."""
        return self._financial(d.SALE, self.sale_fields(amount_fen, **kwargs))  # type: ignore[arg-type]

    def send_sale_fields(self, fields: dict[str, str]) -> Reply:
        return self._financial(d.SALE, fields)

    def reversal_fields(self, sale: dict[str, str], at: datetime | None = None) -> dict[str, str]:
        """The fields of the reversal of the sale sent with ``sale`` (its fields)."""
        fields = {k: v for k, v in sale.items() if k in {"2", "3", "4", "22", "25", "41", "42", "49"}}
        fields.update(
            {
                "11": self.next_trace(),
                **self._stamp(at),
                "60": d.TYPE_REVERSAL + self.batch_no + d.NET_NONE,
                "61": sale["60"][2:8] + sale["11"] + sale["13"],
            }
        )
        return fields

    def reversal(self, sale: dict[str, str], at: datetime | None = None) -> Reply:
        """Reverse the sale sent with ``sale`` (its fields)."""
        return self._financial(d.REVERSAL, self.reversal_fields(sale, at))

    def heartbeat_request(
        self, *, lat: float | None = None, lon: float | None = None, firmware: str = ""
    ) -> bytes:
        data = []
        if lat is not None and lon is not None:
            data += [f"LAT={lat:.6f}", f"LON={lon:.6f}"]
        if firmware:
            data.append(f"FW={firmware}")
        fields = {
            "11": self.next_trace(),
            "41": self.tid,
            "42": self.mid,
            "60": d.TYPE_HEARTBEAT + self.batch_no + d.NET_HEARTBEAT,
        }
        if data:
            fields["63"] = ";".join(data)
        return codec.encode(d.HEARTBEAT, fields)

    def heartbeat(self, *, lat: float | None = None, lon: float | None = None, firmware: str = "") -> Reply:
        answer = self.exchange(self.heartbeat_request(lat=lat, lon=lon, firmware=firmware))
        return Reply(answer.get("39"), answer.fields)


def read_answer(raw: bytes) -> codec.Message:
    try:
        return codec.decode_any(raw)
    except codec.Malformed as exc:
        raise GatewayError(str(exc)) from None
