"""Form fields for money as people type it: amounts in yuan ("12.30", "12.30元", "¥1,234.50") and
rates in percent ("0.60%", "0.6"). Both read digits 0–9 and their full-width forms only
(``platform.money.ascii_number_text``): a digit of another script is refused, never read as a number."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from posfleet.platform.money import MoneyParseError, ascii_number_text, format_fen, parse_amount

_PERCENT = re.compile(r"^ *(?P<number>[0-9]{1,3}(?:\.[0-9]+)?) *%? *$")
RATE_PLACES = 6  # a rate is stored with 6 decimals (0.006000 = 0.60 %)
MAX_PERCENT = Decimal(10)


def parse_percent(text: str) -> Decimal:
    """``"0.60%"`` -> ``Decimal("0.006")``. At most four decimals of a percent, from 0 to under 10 %."""
    try:
        normal = ascii_number_text((text or "").replace("％", "%"))
    except MoneyParseError as exc:
        raise forms.ValidationError(
            _("“%(text)s” has digits other than 0–9: type the rate with the digits 0 to 9, e.g. 0.60%%."),
            code="rate_digits",
            params={"text": (text or "")[:16]},
        ) from exc
    found = _PERCENT.match(normal)
    if not found:
        raise forms.ValidationError(_("Enter a rate in percent, such as 0.60%."), code="rate")
    try:
        percent = Decimal(found.group("number"))
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits only digits
        raise forms.ValidationError(_("Enter a rate in percent, such as 0.60%."), code="rate") from exc
    if percent >= MAX_PERCENT:
        raise forms.ValidationError(_("A rate is below 10%."), code="rate_range")
    if -percent.as_tuple().exponent > RATE_PLACES - 2:  # type: ignore[operator]
        raise forms.ValidationError(_("A rate has at most four decimals of a percent."), code="rate_places")
    return percent / 100


def percent_text(rate: Decimal | None) -> str:
    """``Decimal("0.006")`` -> ``"0.60%"``: how a rate is shown back in a form."""
    if rate is None:
        return ""
    value = (Decimal(rate) * 100).normalize()
    whole, _dot, decimals = f"{value:f}".partition(".")
    return f"{whole}.{decimals.ljust(2, '0')}%"


class _TypedText(forms.CharField):
    """Text typed by a person, turned into a value by ``convert``; length is checked on the text (the
    CharField's own length validator would run on the value)."""

    limit = 32

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.pop("max_length", None)
        super().__init__(*args, **kwargs)
        self.widget.attrs["maxlength"] = str(self.limit)

    def to_python(self, value: Any) -> Any:
        text = super().to_python(value)
        if not text:
            return None
        if len(text) > self.limit:
            raise forms.ValidationError(_("This is too long."), code="max_length")
        return self.convert(str(text))

    def convert(self, text: str) -> Any:
        raise NotImplementedError


class MoneyField(_TypedText):
    """An amount in yuan typed by a person; cleans to int fen (``parse_amount``) or None when empty."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.widget.attrs.setdefault("inputmode", "decimal")
        self.widget.attrs.setdefault("autocomplete", "off")
        self.widget.attrs.setdefault("placeholder", "0.00")

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return format_fen(value, symbol=False).replace(",", "")
        return value

    def convert(self, text: str) -> int:
        try:
            return parse_amount(text)
        except MoneyParseError as exc:
            raise forms.ValidationError(str(exc), code="amount") from exc


class PercentField(_TypedText):
    """A rate typed in percent; cleans to a ``Decimal`` rate (0.006 for "0.60%") or None when empty."""

    limit = 16

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.widget.attrs.setdefault("inputmode", "decimal")
        self.widget.attrs.setdefault("autocomplete", "off")
        self.widget.attrs.setdefault("placeholder", "0.60%")

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, Decimal):
            return percent_text(value)
        return value

    def convert(self, text: str) -> Decimal:
        return parse_percent(text)
