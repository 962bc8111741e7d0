"""Template filters for amounts: ``{{ fen|fen }}`` -> ``¥1,234.56`` (platform.money.format_fen)."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django import template

from posfleet.billing.models import PaymentMethod
from posfleet.platform.money import format_fen

register = template.Library()


@register.filter
def fen(value: int | None) -> str:
    """``123456`` -> ``¥1,234.56``; empty for None."""
    if value is None or value == "":
        return ""
    return format_fen(int(value))


@register.filter
def fen_signed(value: int | None) -> str:
    """``123456`` -> ``+¥1,234.56`` (and ``-¥…`` for negatives), for movements."""
    if value is None or value == "":
        return ""
    return format_fen(int(value), sign=True)


@register.filter
def fen_signed_negative(value: int | None) -> str:
    """A deduction: ``1230`` -> ``-¥12.30`` (zero stays ``¥0.00``)."""
    if value is None or value == "":
        return ""
    return format_fen(-int(value))


@register.filter
def fen_plain(value: int | None) -> str:
    """``123456`` -> ``1234.56``: the value of a money input."""
    if value is None or value == "":
        return ""
    return format_fen(int(value), symbol=False).replace(",", "")


@register.filter
def by_method(rules: Iterable[Any]) -> list[Any]:
    """Rate rules in the order of ``PaymentMethod`` (credit, debit, QR, NFC, foreign), not by name."""
    order = {method: i for i, method in enumerate(PaymentMethod.values)}
    return sorted(rules, key=lambda rule: order.get(rule.method, len(order)))


@register.filter
def percent(rate: Decimal | None) -> str:
    """A rate as people write it: ``Decimal("0.006")`` -> ``0.60%``, ``0.00385`` -> ``0.385%``."""
    if rate is None or rate == "":
        return ""
    value = (Decimal(rate) * 100).normalize()
    text = f"{value:f}"
    whole, _dot, decimals = text.partition(".")
    return f"{whole}.{decimals.ljust(2, '0')}%"
