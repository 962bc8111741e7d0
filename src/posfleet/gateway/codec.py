"""Frames and messages of the gateway's dialect (``dialect.py``, docs/gateway.md).

A frame on the wire: a 2-byte big-endian length, then the 5-byte TPDU, then the ISO 8583 message.
``decode`` turns a message into a ``Message`` (its fields checked against the dialect: which fields the
type may carry, digits where digits belong) or raises ``Malformed``; ``encode`` is the reverse. Nothing
here touches the database or a key.
"""

from __future__ import annotations

import contextlib
import re
import struct
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import iso8583
from iso8583.decoder import DecodeError
from iso8583.encoder import EncodeError

from posfleet.gateway import dialect as d

_DIGITS = re.compile(r"^[0-9]*$")
_TEXT = re.compile(r"^[\x20-\x7e]*$")
_NUMERIC = frozenset({"2", "3", "4", "11", "12", "13", "22", "25", "60", "61"})
_TEXT_FIELDS = frozenset({"37", "38", "39", "41", "42", "48", "49", "63"})


class Malformed(ValueError):
    """The bytes are not a message of the dialect. ``mti``, ``tid`` and ``mid`` are kept when they
    could be read, so the answer can still say ``30`` to the terminal that sent it."""

    def __init__(self, reason: str, *, mti: str = "", fields: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.mti = mti
        self.fields = fields or {}


@dataclass(frozen=True)
class Message:
    mti: str
    fields: dict[str, str]
    raw: bytes = field(repr=False, default=b"")  # the encoded message, for the MAC

    def get(self, name: str, default: str = "") -> str:
        return self.fields.get(name, default)

    @property
    def tid(self) -> str:
        return self.fields.get("41", "")

    @property
    def mid(self) -> str:
        return self.fields.get("42", "")

    @property
    def mac_data(self) -> bytes:
        """What field 64 covers: the message from the MTI to the byte before the MAC."""
        return self.raw[:-8] if "64" in self.fields else self.raw


def frame(tpdu: bytes, message: bytes) -> bytes:
    body = tpdu + message
    return struct.pack(">H", len(body)) + body


def answer_tpdu(tpdu: bytes) -> bytes:
    """The TPDU of an answer: the same ID, destination and source swapped."""
    if len(tpdu) != d.TPDU_BYTES:
        return b"\x60\x00\x00\x00\x00"
    return tpdu[:1] + tpdu[3:5] + tpdu[1:3]


def decode(raw: bytes) -> Message:
    """One request of the dialect, or ``Malformed``."""
    try:
        doc, _encoded = iso8583.decode(bytes(raw), d.SPEC)
    except (DecodeError, ValueError, TypeError, IndexError, KeyError, OverflowError) as exc:
        raise Malformed(f"undecodable: {type(exc).__name__}") from None
    mti = str(doc.get("t", ""))
    fields = {k: str(v) for k, v in doc.items() if k not in {"t", "p", "h"}}
    readable = {k: v for k, v in fields.items() if k in {"11", "41", "42"} and _TEXT.match(v)}
    if mti not in d.REQUIRED:
        raise Malformed("unknown message type", fields=readable)
    present = set(fields)
    missing = d.REQUIRED[mti] - present
    extra = present - d.REQUIRED[mti] - d.OPTIONAL[mti]
    if missing or extra:
        what = f"missing {sorted(missing)}" if missing else f"unexpected {sorted(extra)}"
        raise Malformed(what, mti=mti, fields=readable)
    for name, value in fields.items():
        if name in _NUMERIC and not _DIGITS.match(value):
            raise Malformed(f"field {name} is not numeric", mti=mti, fields=readable)
        if name in _TEXT_FIELDS and not _TEXT.match(value):
            raise Malformed(f"field {name} is not printable", mti=mti, fields=readable)
    if "49" in fields and fields["49"] != d.CURRENCY_CNY:
        raise Malformed("currency is not CNY", mti=mti, fields=readable)
    return Message(mti=mti, fields=fields, raw=bytes(raw))


def decode_any(raw: bytes) -> Message:
    """Any message of the dialect's layout, unchecked (an answer, as a terminal or the issuer link
    reads it); ``Malformed`` when it cannot be decoded at all."""
    try:
        doc, _encoded = iso8583.decode(bytes(raw), d.SPEC)
    except (DecodeError, ValueError, TypeError, IndexError, KeyError, OverflowError) as exc:
        raise Malformed(f"undecodable: {type(exc).__name__}") from None
    fields = {k: str(v) for k, v in doc.items() if k not in {"t", "p", "h"}}
    return Message(mti=str(doc.get("t", "")), fields=fields, raw=bytes(raw))


def encode(mti: str, fields: dict[str, str]) -> bytes:
    """The bytes of a message (``EncodeError`` is a bug of ours, not the terminal's: it propagates)."""
    doc: dict[str, str] = {"t": mti, **fields}
    raw, _encoded = iso8583.encode(doc, d.SPEC)
    return bytes(raw)


def encode_with_mac(mti: str, fields: dict[str, str], mac: object) -> bytes:
    """Encode with field 64 set to ``mac(data)`` over the bytes before it (``mac``: bytes -> bytes)."""
    draft = encode(mti, {**fields, "64": "00" * 8})
    tag: bytes = mac(draft[:-8])  # type: ignore[operator]
    return draft[:-8] + tag


# -- reading fields ----------------------------------------------------------------------------


def field60(message: Message) -> tuple[str, str, str]:
    """(type code, batch no., network management code) of field 60."""
    value = message.get("60").ljust(11, "0")
    return value[:2], value[2:8], value[8:11]


def month_day(mmdd: str, received: datetime) -> date | None:
    """The date ``MMDD`` nearest before ``received`` (a terminal's 12-31 read on 01-01 is last year's);
    None when it is no date."""
    try:
        when = date(received.year, int(mmdd[:2]), int(mmdd[2:4]))
    except (ValueError, IndexError):
        try:  # 02-29 of a year that has none: the last leap year's
            when = date(received.year - 1, int(mmdd[:2]), int(mmdd[2:4]))
        except (ValueError, IndexError):
            return None
    if when > received.date() + timedelta(days=1):
        with contextlib.suppress(ValueError):
            when = when.replace(year=when.year - 1)
    return when


def local_datetime(message: Message, received: datetime) -> datetime:
    """The terminal's local date and time (fields 13, 12); the time of receipt when they are missing
    or invalid."""
    when = month_day(message.get("13"), received)
    hms = message.get("12")
    try:
        at = time(int(hms[:2]), int(hms[2:4]), int(hms[4:6]))
    except (ValueError, IndexError):
        return received
    if when is None:
        return received
    return datetime.combine(when, at, tzinfo=received.tzinfo)


def masked(pan: str) -> str:
    """First 6 and last 4 digits only (PCI DSS): the only form of a card number kept or logged."""
    if len(pan) < 13:
        return ""
    return pan[:6] + "*" * (len(pan) - 10) + pan[-4:]


ENCODE_ERRORS = (EncodeError,)
