"""posfleet's ISO 8583 dialect (docs/gateway.md): the pyiso8583 spec, the message types, the field
layout of each, and the response codes. One place; the server, the simulators and the docs' hex dumps
are built from it.

Numeric fields are BCD (two digits a byte), text fields ASCII, keys and the MAC binary — the layout of
the POS specifications of Chinese acquirers (银联 POS 终端规范), reduced to the fields posfleet uses.
"""

from __future__ import annotations

import copy
from typing import Any

from iso8583.specs import default

Spec = dict[str, dict[str, Any]]


def _bcd(digits: int, *, var: int = 0, pad: str = "left") -> dict[str, Any]:
    """A BCD field of ``digits`` digits (fixed) or up to ``digits`` (``var`` = 1 for LLVAR, 2 for
    LLLVAR, BCD length prefix)."""
    field: dict[str, Any] = {
        "data_enc": "b",
        "len_enc": "bcd",
        "len_type": var,
        "max_len": digits,
        "len_count": "nibbles",
    }
    field["left_pad" if pad == "left" else "right_pad"] = "0" if pad == "left" else "F"
    return field


def _text(length: int, *, var: int = 0) -> dict[str, Any]:
    return {"data_enc": "ascii", "len_enc": "bcd", "len_type": var, "max_len": length}


def _binary(length: int, *, var: int = 0) -> dict[str, Any]:
    return {"data_enc": "b", "len_enc": "bcd", "len_type": var, "max_len": length}


FIELDS: dict[str, tuple[dict[str, Any], str]] = {
    "t": ({"data_enc": "b", "len_enc": "bcd", "len_type": 0, "max_len": 2}, "message type (MTI), BCD"),
    "p": (_binary(8), "primary bitmap"),
    "2": (_bcd(19, var=1, pad="right"), "card number (PAN), LLVAR BCD, padded F"),
    "3": (_bcd(6), "processing code: 000000 sale/reversal"),
    "4": (_bcd(12), "amount in fen (CNY has no minor unit beyond fen)"),
    "11": (_bcd(6), "system trace audit number (STAN, the terminal's trace no.)"),
    "12": (_bcd(6), "local time hhmmss"),
    "13": (_bcd(4), "local date MMDD"),
    "22": (_bcd(3), "POS entry mode"),
    "25": (_bcd(2), "POS condition code: 00 normal"),
    "37": (_text(12), "retrieval reference number (response)"),
    "38": (_text(6), "authorisation code (approved response)"),
    "39": (_text(2), "response code"),
    "41": (_text(8), "terminal ID (TID)"),
    "42": (_text(15), "merchant ID (MID)"),
    "48": (_text(64, var=2), "QR payment code (a scanned sale), LLLVAR ASCII"),
    "49": (_text(3), "currency, 156 (CNY)"),
    "60": (_bcd(11, var=2), "type code n2 + batch no. n6 + network management code n3, LLLVAR BCD"),
    "61": (_bcd(16, var=2), "original batch no. n6 + trace no. n6 + date MMDD (reversal), LLLVAR BCD"),
    "62": (_binary(32, var=2), "session key under the master key + its check value (0810)"),
    "63": (_text(120, var=2), "heartbeat: LAT=..;LON=..;FW=.. (0820), LLLVAR ASCII"),
    "64": (_binary(8), "MAC (X9.19 or SM4 by terminal model) over the message before it; 0800: master key"),
}


def _spec() -> Spec:
    spec: Spec = copy.deepcopy(default)
    spec["h"] = {"data_enc": "ascii", "len_enc": "ascii", "len_type": 0, "max_len": 0, "desc": "no header"}
    for name, (field, desc) in FIELDS.items():
        spec[name] = {**field, "desc": desc}
    return spec


SPEC: Spec = _spec()

# The fields each message may carry; anything else is a format error (30). Requests first.
SIGN_ON, SIGN_ON_ANSWER = "0800", "0810"
SALE, SALE_ANSWER = "0200", "0210"
REVERSAL, REVERSAL_ANSWER = "0400", "0410"
HEARTBEAT, HEARTBEAT_ANSWER = "0820", "0830"
ANSWER_OF = {
    SIGN_ON: SIGN_ON_ANSWER,
    SALE: SALE_ANSWER,
    REVERSAL: REVERSAL_ANSWER,
    HEARTBEAT: HEARTBEAT_ANSWER,
}

REQUIRED: dict[str, frozenset[str]] = {
    SIGN_ON: frozenset({"11", "41", "42", "60", "64"}),
    SALE: frozenset({"3", "4", "11", "22", "25", "41", "42", "49", "60", "64"}),
    REVERSAL: frozenset({"3", "4", "11", "22", "25", "41", "42", "49", "60", "61", "64"}),
    HEARTBEAT: frozenset({"11", "41", "42", "60"}),
}
OPTIONAL: dict[str, frozenset[str]] = {
    SIGN_ON: frozenset({"12", "13"}),
    SALE: frozenset({"2", "12", "13", "48"}),
    REVERSAL: frozenset({"2", "12", "13"}),
    HEARTBEAT: frozenset({"12", "13", "63"}),
}
# Requests that must carry a valid MAC (field 64): a sale and a reversal under the session key, a
# sign-on under the master key (who knows a TID and MID cannot take the terminal's session away).
MACED = frozenset({SIGN_ON, SALE, REVERSAL})

# Field 39
APPROVED = "00"
INVALID_MERCHANT = "03"
NO_ORIGINAL = "25"  # unable to locate the original (a reversal)
FORMAT_ERROR = "30"
NOT_PERMITTED = "58"  # not permitted to this terminal: any non-active state, unknown TID/MID pair
DUPLICATE = "94"
SYSTEM_ERROR = "96"
MAC_FAILURE = "A0"
# Answers the issuer gives (relayed as is on a sale)
INSUFFICIENT_FUNDS = "51"
DO_NOT_HONOUR = "05"
ISSUER_UNAVAILABLE = "91"

# Field 22, POS entry mode: the first two digits say how the card or code was read.
ENTRY_MODES = {"02": "swipe", "05": "insert", "07": "tap", "01": "keyed", "03": "scan"}
CURRENCY_CNY = "156"
# Field 60.1, the type code of a message
TYPE_SIGN_ON, TYPE_SALE, TYPE_REVERSAL, TYPE_HEARTBEAT = "00", "22", "22", "00"
# Field 60.3, network management code (sign-on of a double-length key; heartbeat)
NET_SIGN_ON, NET_NONE, NET_HEARTBEAT = "003", "000", "301"

MAX_MESSAGE = 1024  # bytes after the length prefix (TPDU included)
TPDU_BYTES = 5

# The acquirer's BIN table, reduced: which card numbers are credit cards; foreign schemes by their
# first digit. A card read by tap is "nfc" and a scanned code "qr" whatever the card (plans price them so).
CREDIT_BINS = frozenset({"622588", "625908", "628888", "625802", "622155"})
FOREIGN_FIRST_DIGITS = frozenset({"3", "4", "5"})


def method_of(entry_mode: str, pan: str) -> str:
    """The payment method (``billing.PaymentMethod`` value) of a sale."""
    how = ENTRY_MODES.get(entry_mode[:2], "")
    if how == "scan":
        return "qr"
    if how == "tap":
        return "nfc"
    if pan[:1] in FOREIGN_FIRST_DIGITS:
        return "foreign"
    return "credit" if pan[:6] in CREDIT_BINS else "debit"
