"""What the demo's money is made of: how each kind of shop sells, the contracts each kind of terminal
comes with, and the plans offered by us and by (fictional) competitors.

Everything here is invented for the demo. Competitors' names are made up (某付通, 银联通…); card
number prefixes are only the first six digits of masked numbers, as a receipt prints them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Sales:
    """How a kind of shop (by MCC) takes money: how busy a terminal is (relative), the ticket size in
    yuan (log-normal: median and spread, clipped to a range), how often a price is a round number,
    when people buy (an hourly profile), and the share of foreign cards (tourist trades more)."""

    busy: float
    median: float
    spread: float
    low: int
    high: int
    round_share: float
    hours: str
    foreign: float = 0.01


SALES: dict[str, Sales] = {
    "5812": Sales(1.1, 118, 0.65, 20, 2_000, 0.30, "meals"),  # restaurants
    "5814": Sales(1.5, 32, 0.45, 8, 300, 0.25, "meals"),  # noodles, dumplings, fast food
    "5411": Sales(1.4, 76, 0.80, 5, 1_500, 0.10, "long_day"),  # supermarkets
    "5499": Sales(1.6, 24, 0.55, 5, 80, 0.15, "convenience"),  # convenience stores: ¥5–¥80
    "5912": Sales(1.0, 62, 0.70, 8, 1_200, 0.15, "day"),  # pharmacies
    "5651": Sales(0.7, 258, 0.60, 39, 3_000, 0.45, "evening"),  # clothing
    "5941": Sales(0.6, 318, 0.75, 30, 5_000, 0.40, "day"),  # sports goods
    "5942": Sales(0.7, 66, 0.50, 10, 600, 0.20, "day"),  # books
    "7230": Sales(0.8, 148, 0.70, 30, 3_000, 0.55, "services"),  # hair and beauty
    "5992": Sales(0.6, 118, 0.60, 20, 1_500, 0.45, "day"),  # florists
    "7011": Sales(0.8, 438, 0.50, 150, 6_000, 0.35, "hotel", 0.06),  # hotels: tourists
    "5533": Sales(0.5, 368, 1.05, 20, 8_000, 0.30, "day"),  # car supplies: up to several thousand
    "5311": Sales(1.2, 368, 0.90, 20, 20_000, 0.25, "evening", 0.03),  # department stores
    "5732": Sales(0.6, 580, 1.10, 20, 15_000, 0.30, "evening", 0.02),  # electronics
}

# Relative number of sales in each hour of the day (0–23): lunch and dinner for restaurants, mornings
# and evenings for convenience stores, afternoons and evenings for shops; few at night.
HOURS: dict[str, tuple[float, ...]] = {
    "meals": (
        *(0.15, 0.08, 0.04, 0.02, 0.02, 0.03, 0.10, 0.40, 0.60, 0.50, 0.90, 4.0),
        *(5.5, 3.0, 1.0, 0.8, 1.2, 3.5, 5.0, 4.0, 2.0, 1.2, 0.8, 0.4),
    ),
    "convenience": (
        *(0.40, 0.25, 0.15, 0.10, 0.10, 0.20, 0.90, 2.80, 3.20, 1.80, 1.40, 1.80),
        *(2.60, 1.90, 1.40, 1.40, 1.60, 2.40, 3.00, 2.80, 2.40, 2.00, 1.40, 0.80),
    ),
    "long_day": (
        *(0.05, 0.02, 0.01, 0.01, 0.01, 0.02, 0.10, 0.80, 1.80, 2.40, 2.60, 2.40),
        *(2.00, 1.80, 1.80, 2.00, 2.60, 3.20, 3.40, 3.00, 2.20, 1.40, 0.50, 0.10),
    ),
    "day": (
        *(0.02, 0.01, 0.01, 0.01, 0.01, 0.01, 0.05, 0.30, 1.20, 2.20, 2.60, 2.60),
        *(2.20, 2.00, 2.20, 2.40, 2.60, 2.80, 2.60, 2.20, 1.60, 0.80, 0.20, 0.05),
    ),
    "evening": (
        *(0.02, 0.01, 0.01, 0.01, 0.01, 0.01, 0.02, 0.05, 0.20, 0.60, 1.40, 1.80),
        *(1.80, 1.60, 1.80, 2.00, 2.20, 2.60, 3.20, 3.60, 3.40, 2.60, 0.80, 0.10),
    ),
    "services": (
        *(0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.05, 0.30, 1.40, 2.20, 2.20),
        *(1.60, 1.80, 2.40, 2.60, 2.60, 2.60, 2.80, 2.80, 2.20, 1.20, 0.30, 0.05),
    ),
    "hotel": (
        *(0.40, 0.30, 0.15, 0.10, 0.10, 0.20, 0.60, 2.00, 3.20, 3.00, 2.60, 2.40),
        *(2.00, 1.60, 2.20, 2.60, 2.40, 2.20, 2.60, 2.60, 2.20, 1.80, 1.20, 0.70),
    ),
}

# Payment methods of a sale (per cent): a Chinese retail mix, QR first.
METHODS = {"qr": 55.0, "debit": 20.0, "credit": 18.0, "nfc": 6.0, "foreign": 1.0}
# How a card is read: chip mostly, the stripe sometimes; a contactless sale is a tap, QR is scanned.
CARD_ENTRY = {"insert": 85.0, "swipe": 15.0}
FOREIGN_ENTRY = {"insert": 65.0, "tap": 30.0, "swipe": 5.0}
# The first six digits of masked card numbers (as printed on a receipt).
BINS = {
    "debit": ("622202", "621700", "622848", "621226", "623668", "621483"),
    "credit": ("622588", "625807", "628288", "622155", "625965", "524047"),
    "foreign": ("454742", "414720", "542418", "552490", "356600", "491753"),
}
DECLINE_CODES_CARD = {"51": 50.0, "05": 30.0, "55": 20.0}  # insufficient funds, do not honour, wrong PIN
DECLINE_CODES_QR = {"51": 60.0, "05": 40.0}

# Shares of sales (per mille) that are declined, refunded later, reversed the same day.
DECLINED_PER_MILLE = 30
REFUNDED_PER_MILLE = 10
REVERSED_PER_MILLE = 3
WEEKEND = 1.2  # more sales on Saturdays and Sundays


@dataclass(frozen=True)
class ContractMenu:
    """The contract a terminal kind comes with: annual service/SIM fee choices (fen), deposit choices
    (fen; 0 = none) with how often one is asked, the penalty rule, the device recovery fee, the
    damage prices by inspection grade and the device recovery value (credited at closure when the
    device comes back as new; 0 = none)."""

    annual_fees: tuple[int, ...]
    deposits: tuple[int, ...]
    deposit_share: float
    penalty_rule: str  # "remaining_months" | "fixed" | "none"
    penalty_fen: int  # the monthly fee for remaining_months, or the fixed amount
    penalty_cap_fen: int | None
    recovery_fee_fen: int
    damage: dict[str, int]
    recovery_value_fen: int = 0


CONTRACTS: dict[str, ContractMenu] = {
    "smart": ContractMenu(
        (16_800, 19_900),
        (19_900, 29_900),
        0.9,
        "remaining_months",
        2_000,
        20_000,
        59_900,
        {"A": 0, "B": 8_000, "C": 35_000},
        3_000,
    ),
    "traditional": ContractMenu(
        (12_800,), (19_900,), 0.8, "fixed", 10_000, None, 39_900, {"A": 0, "B": 5_000, "C": 20_000}
    ),
    "wireless": ContractMenu(
        (12_800, 14_800),
        (19_900,),
        0.7,
        "remaining_months",
        1_500,
        15_000,
        39_900,
        {"A": 0, "B": 5_000, "C": 25_000},
        2_000,
    ),
    "e_signature": ContractMenu(
        (9_900, 12_800), (9_900,), 0.5, "fixed", 5_000, None, 19_900, {"A": 0, "B": 3_000, "C": 9_900}
    ),
    "mpos": ContractMenu((9_900,), (), 0.0, "none", 0, None, 9_900, {"A": 0, "B": 2_000, "C": 6_900}),
}
MIN_TERM_MONTHS = 12
# Inspection grades of returned devices (per cent): most come back as new, some worn, a few damaged.
GRADES = {"A": 80.0, "B": 15.0, "C": 5.0}

# Rate plans. (method: (rate, cap in fen, minimum in fen)); rates as the console shows them.
Rules = dict[str, tuple[Decimal, int | None, int | None]]


@dataclass(frozen=True)
class PlanSpec:
    code: str
    name: str
    provider_name: str
    rules: Rules
    competitor: bool = True
    # Per terminal, what a competitor asks beside its rates (the comparison adds them; ADR 0027).
    annual_fee_fen: int = 0
    deposit_fen: int = 0


COMPETITORS: tuple[PlanSpec, ...] = (
    PlanSpec(
        "rival-a-standard",
        "某付通 标准 / Rival A",
        "某付通 (fictional)",
        {
            "credit": (Decimal("0.005800"), None, None),
            "debit": (Decimal("0.005000"), 1_800, None),
            "qr": (Decimal("0.003800"), None, None),
            "nfc": (Decimal("0.005800"), None, None),
            "foreign": (Decimal("0.012000"), None, None),
        },
        annual_fee_fen=15_000,  # ¥150.00 a year of service and SIM
        deposit_fen=19_900,
    ),
    PlanSpec(
        "rival-b-low-qr",
        "银联通 扫码优惠 / Rival B",
        "银联通 (fictional)",
        {
            "credit": (Decimal("0.006000"), None, None),
            "debit": (Decimal("0.005500"), 2_500, None),
            "qr": (Decimal("0.002000"), None, 20),  # 0.20 % but at least ¥0.20 a sale
            "nfc": (Decimal("0.006000"), None, None),
        },  # no foreign cards at all: the comparison marks the plan incomplete for those who take them
        deposit_fen=29_900,
    ),
    PlanSpec(
        "rival-c-flat",
        "乐收 一口价 / Rival C",
        "乐收科技 (fictional)",
        {
            "credit": (Decimal("0.005500"), None, None),
            "debit": (Decimal("0.005500"), None, None),  # no cap: big debit tickets cost more
            "qr": (Decimal("0.005500"), None, None),
            "nfc": (Decimal("0.005500"), None, None),
            "foreign": (Decimal("0.013000"), None, None),
        },
        annual_fee_fen=9_900,
    ),
)
VIP = PlanSpec(
    "vip",
    "大商户优惠 / VIP",
    "",
    {
        "credit": (Decimal("0.005500"), None, None),
        "debit": (Decimal("0.005000"), 1_800, None),
        "qr": (Decimal("0.003800"), None, None),
        "nfc": (Decimal("0.005500"), None, None),
        "foreign": (Decimal("0.012000"), None, None),
    },
    competitor=False,
)
# The VIP plan's second version: QR cheaper again (a plan change mid-window, never rewriting history).
VIP_V2_QR = Decimal("0.003500")
