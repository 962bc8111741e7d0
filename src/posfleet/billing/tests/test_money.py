"""Money arithmetic: properties of the fee and rounding (hypothesis), formatting and parsing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import translation
from hypothesis import given
from hypothesis import strategies as st

from posfleet.platform.money import (
    Money,
    MoneyParseError,
    fee_fen,
    format_fen,
    parse_amount,
    to_fen,
    yuan_to_fen,
)

amounts = st.integers(min_value=0, max_value=10**12)
rates = st.decimals(min_value=Decimal(0), max_value=Decimal("0.099999"), places=6)
caps = st.none() | st.integers(min_value=0, max_value=10**7)


@given(amounts, rates, caps, caps)
def test_a_fee_is_never_negative_nor_above_the_amount_and_respects_cap_and_minimum(
    amount, rate, cap, minimum
):
    fee = fee_fen(amount, rate, cap_fen=cap, min_fen=minimum)
    assert 0 <= fee <= amount
    if cap is not None:
        assert fee <= cap
    if minimum is not None and minimum <= amount and (cap is None or minimum <= cap):
        assert fee >= minimum


@given(amounts, rates)
def test_the_fee_is_the_rate_rounded_half_up(amount, rate):
    exact = Decimal(amount) * rate
    fee = fee_fen(amount, rate)
    assert abs(Decimal(fee) - exact) <= Decimal("0.5")
    if exact - int(exact) == Decimal("0.5"):
        assert fee == int(exact) + 1  # half up, never banker's rounding


@given(st.lists(st.integers(min_value=1, max_value=10**9), min_size=1, max_size=50))
def test_splitting_an_amount_never_loses_a_fen(parts):
    total = sum(parts)
    acc = Money(0)
    for p in parts:
        acc = acc + Money(p)
    assert acc.fen == total


@given(amounts, rates)
def test_fees_of_a_split_sale_differ_from_the_whole_by_at_most_a_fen_per_part(amount, rate):
    half = amount // 2
    parts = fee_fen(half, rate) + fee_fen(amount - half, rate)
    assert abs(parts - fee_fen(amount, rate)) <= 1


def test_the_articles_debit_cap():
    assert fee_fen(1_000_000_00, Decimal("0.0055"), cap_fen=2000) == 2000  # ¥1,000,000 → capped at ¥20
    assert fee_fen(100_00, Decimal("0.0055"), cap_fen=2000) == 55  # ¥100 → ¥0.55
    assert fee_fen(1, Decimal("0.006")) == 0
    assert fee_fen(84, Decimal("0.006")) == 1  # 0.504 fen rounds up


def test_to_fen_refuses_floats():
    with pytest.raises(TypeError):
        to_fen(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        yuan_to_fen(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Money(1.0)  # type: ignore[arg-type]
    assert to_fen(Decimal("2.5")) == 3
    assert to_fen(Decimal("-2.5")) == -3
    assert yuan_to_fen("12.345") == 1235


@pytest.mark.parametrize(
    ("fen", "text"),
    [
        (0, "¥0.00"),
        (5, "¥0.05"),
        (123456, "¥1,234.56"),
        (-5, "-¥0.05"),
        (100000000, "¥1,000,000.00"),
    ],
)
def test_format(fen, text):
    assert format_fen(fen) == text


@pytest.mark.parametrize(
    ("text", "fen"),
    [
        ("12", 1200),
        ("12.3", 1230),
        ("12.30", 1230),
        ("12.30元", 1230),
        ("¥1,234.50", 123450),
        ("￥ 1 234.5", 123450),
        ("0.01", 1),
        ("  7 ", 700),
        ("RMB 3.20", 320),
        ("12，000.00", 1200000),
        ("１２.５", 1250),  # full-width digits from a Chinese input method
        ("１００", 10000),  # issue 11: released a deposit of ¥100.00; still ¥100.00, shown for confirmation
        ("￥１，２３４．５０", 123450),  # full-width yuan sign, grouping and point
        ("12,345,678.9", 1234567890),
    ],
)
def test_parse_what_people_type(text, fen):
    assert parse_amount(text) == fen


@pytest.mark.parametrize("text", ["", "   ", "12.345", "abc", "1.2.3", "-5", "12元5角", "1e3", "¥"])
def test_parse_refuses_with_a_reason(text):
    with pytest.raises(MoneyParseError) as refused:
        parse_amount(text)
    assert str(refused.value)


@pytest.mark.parametrize(
    "text",
    [
        "١٠٠",  # Arabic-Indic: int() and the old pattern's \d read it as 100
        "۱۰۰",  # Extended Arabic-Indic (Persian)
        "१००",  # Devanagari
        "১০০",  # Bengali
        "๑๐๐",  # Thai
        "𝟏𝟎𝟎",  # mathematical bold digits
        "²",  # superscript two
        "1²",
        "¹⁰⁰",
        "①",  # circled one
        "Ⅻ",  # Roman numeral twelve
        "五十",  # Chinese numerals
        "１٠０",  # full-width mixed with Arabic-Indic
        "¥١٠٠.٠٠",
    ],
)
def test_digits_of_other_scripts_are_refused_and_the_message_says_so(text):
    with pytest.raises(MoneyParseError) as refused, translation.override("en"):
        parse_amount(text)
    assert str(refused.value) == (
        f"“{text}” has digits other than 0–9: type the amount with the digits 0 to 9, e.g. 12.30."
    )


@pytest.mark.parametrize(
    "text",
    [
        "1,2",  # a decimal comma elsewhere: never read as 12
        "1,23",
        "12,34.5",
        ",100",
        "100,",
        "1\u00a0234",  # a no-break space is not a grouping people type
        "1\u3000234",  # nor an ideographic space
        "\u3000100",
        "100\u2009",
        "12．3．4",
        "1,000,00",
    ],
)
def test_only_groups_of_three_digits_and_ascii_spaces_are_grouping(text):
    with pytest.raises(MoneyParseError):
        parse_amount(text)


def test_money_refuses_mixed_currencies():
    with pytest.raises(TypeError):
        Money(1) + Money(1, "USD")
