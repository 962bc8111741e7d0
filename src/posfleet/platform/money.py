"""Money: integer fen (分) of CNY, one rounding rule, formatting and parsing for people.

Every amount in posfleet is an ``int`` of fen; rates are ``Decimal``. The one place a fraction of a fen
becomes a fen is ``to_fen`` (round half up, 四舍五入). No float ever touches money: ``to_fen`` refuses
one, and so does ``Money``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CURRENCY = "CNY"
FEN_PER_YUAN = 100


def to_fen(value: Decimal | int) -> int:
    """Round an amount in fen (possibly fractional, e.g. amount × rate) to whole fen, half up."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise TypeError(f"to_fen takes a Decimal or an int, not {type(value).__name__}")
    return int(Decimal(value).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def yuan_to_fen(value: Decimal | str | int) -> int:
    """Yuan (元) to fen, rounding half up past the second decimal."""
    if isinstance(value, float):
        raise TypeError("amounts are never floats")
    return to_fen(Decimal(value) * FEN_PER_YUAN)


def fee_fen(amount_fen: int, rate: Decimal, *, cap_fen: int | None = None, min_fen: int | None = None) -> int:
    """The merchant discount fee for one transaction: round-half-up(amount × rate), at least ``min_fen``,
    at most ``cap_fen``, never more than the amount itself and never negative."""
    if amount_fen < 0:
        raise ValueError("a fee is computed on a non-negative amount")
    if rate < 0:
        raise ValueError("a rate is never negative")
    fee = to_fen(Decimal(amount_fen) * rate)
    if min_fen is not None:
        fee = max(fee, min_fen)
    if cap_fen is not None:
        fee = min(fee, cap_fen)
    return max(0, min(fee, amount_fen))


def format_fen(fen: int, *, symbol: bool = True, sign: bool = False) -> str:
    """``¥1,234.56`` (the same in Chinese and English consoles: CNY with grouping, two decimals)."""
    negative = fen < 0
    yuan, cents = divmod(abs(fen), FEN_PER_YUAN)
    text = f"{'¥' if symbol else ''}{yuan:,}.{cents:02d}"
    if negative:
        return f"-{text}"
    return f"+{text}" if sign and fen > 0 else text


class MoneyParseError(ValueError):
    """Input that is not an amount; the message says why, in words a person understands."""


# The only characters of an amount that are not ASCII, and the ASCII they stand for: what a Chinese
# input method types in full-width mode. Every other digit (Arabic-Indic, Devanagari, superscripts,
# circled, Chinese numerals…) is refused, never read as a number (``int("١٠٠")`` would be 100).
FULL_WIDTH = {chr(0xFF10 + n): str(n) for n in range(10)} | {"．": ".", "，": ",", "￥": "¥"}
_AMOUNT = re.compile(
    r"^(?P<sign>[-+]?)(?P<int>[0-9]{1,3}(?:,[0-9]{3})+|[0-9]{1,3}(?: [0-9]{3})+|[0-9]{1,15})"
    r"(?:\.(?P<frac>[0-9]{1,2}))?$"
)
_DECORATION = re.compile(
    r"^ *(?:¥|CNY|RMB)? *(?P<body>.*?) *(?:元|圆|块|CNY|RMB)? *$", re.IGNORECASE | re.ASCII
)
_MAX_DIGITS = 15


def ascii_number_text(text: str) -> str:
    """``text`` with full-width digits, point, comma and yuan sign turned into ASCII (``FULL_WIDTH``),
    nothing else changed. Raises ``MoneyParseError`` when it holds any other digit or numeral."""
    from django.utils.translation import gettext as _

    normal = "".join(FULL_WIDTH.get(ch, ch) for ch in text)
    if any(ch.isnumeric() and not ("0" <= ch <= "9") for ch in normal):
        raise MoneyParseError(
            _("“%(text)s” has digits other than 0–9: type the amount with the digits 0 to 9, e.g. 12.30.")
            % {"text": text[:32]}
        )
    return normal


def parse_amount(text: str, *, allow_negative: bool = False) -> int:
    """Parse what a person types as an amount in yuan: ``12``, ``12.3``, ``12.30元``, ``¥1,234.50``,
    ``1 234.50``, ``１２.５`` (full-width). Returns fen. The one parser of typed amounts (console
    forms, the CSV ingest); the API takes integer fen only.

    Accepted: ASCII digits 0–9 and their full-width forms (``FULL_WIDTH``), a point and at most two
    decimals, grouping in threes with ``,``/``，`` or an ASCII space, a ``¥``/``￥``/CNY/RMB before and
    元/CNY/RMB after. Refused with a reason: digits of any other script, superscripts and numerals,
    more than two decimals, grouping that is not in threes (``1,2`` is never 12), anything else."""
    from django.utils.translation import gettext as _

    if not isinstance(text, str):
        raise MoneyParseError(_("Enter an amount such as 12.30."))
    normal = ascii_number_text(text)
    match = _DECORATION.match(normal)
    body = match.group("body") if match else normal
    if not body:
        raise MoneyParseError(_("Enter an amount such as 12.30."))
    found = _AMOUNT.match(body)
    if not found:
        if re.fullmatch(r"[-+]?[0-9][0-9, ]*\.[0-9]{3,}", body):
            raise MoneyParseError(_("An amount has at most two decimals (fen)."))
        raise MoneyParseError(
            _("“%(text)s” is not an amount: use digits and at most two decimals, e.g. 12.30.")
            % {"text": text[:32]}
        )
    digits = found.group("int").replace(",", "").replace(" ", "")
    if len(digits) > _MAX_DIGITS:
        raise MoneyParseError(
            _("“%(text)s” is not an amount: use digits and at most two decimals, e.g. 12.30.")
            % {"text": text[:32]}
        )
    fen = int(digits) * FEN_PER_YUAN + int((found.group("frac") or "0").ljust(2, "0"))
    if found.group("sign") == "-":
        if not allow_negative:
            raise MoneyParseError(_("The amount cannot be negative."))
        fen = -fen
    return fen


@dataclass(frozen=True, order=True)
class Money:
    """An amount with its currency, for code that passes amounts around (fields store plain fen)."""

    fen: int
    currency: str = CURRENCY

    def __post_init__(self) -> None:
        if isinstance(self.fen, bool) or not isinstance(self.fen, int):
            raise TypeError("Money holds an int of fen")

    def _same(self, other: Any) -> Money:
        if not isinstance(other, Money) or other.currency != self.currency:
            raise TypeError("only Money of the same currency adds up")
        return other

    def __add__(self, other: Money) -> Money:
        return Money(self.fen + self._same(other).fen, self.currency)

    def __sub__(self, other: Money) -> Money:
        return Money(self.fen - self._same(other).fen, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.fen, self.currency)

    def __str__(self) -> str:
        return format_fen(self.fen)

    @classmethod
    def parse(cls, text: str) -> Money:
        return cls(parse_amount(text))
