"""The default rate plan from the source articles, as data (migration 0003 seeds the same figures)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.db import transaction

from posfleet.billing.models import RatePlan, RatePlanVersion, RateRule

STANDARD_CODE = "standard"
STANDARD_SINCE = date(2020, 1, 1)
# method: (rate, cap per transaction in fen). Credit, QR and debit are the articles' figures; contactless
# cards priced like credit cards and foreign cards at 1.25 % are our assumption (the articles are silent).
STANDARD_RULES: dict[str, tuple[Decimal, int | None]] = {
    "credit": (Decimal("0.006000"), None),
    "debit": (Decimal("0.005500"), 2000),
    "qr": (Decimal("0.004800"), None),
    "nfc": (Decimal("0.006000"), None),
    "foreign": (Decimal("0.012500"), None),
}
D0_SURCHARGE = Decimal("0.000500")


def ensure_standard_plan() -> RatePlan:
    """The standard plan, created with its first version if it is missing (e.g. a flushed test database)."""
    with transaction.atomic():
        plan, created = RatePlan.objects.get_or_create(
            code=STANDARD_CODE, defaults={"name": "标准费率 Standard"}
        )
        if created or not plan.versions.exists():
            version = RatePlanVersion.objects.create(
                plan=plan,
                number=1,
                effective_from=STANDARD_SINCE,
                settlement_cycle="t1",
                d0_surcharge_rate=D0_SURCHARGE,
                note="Source articles' figures",
            )
            RateRule.objects.bulk_create(
                [
                    RateRule(version=version, method=m, rate=rate, cap_fen=cap)
                    for m, (rate, cap) in STANDARD_RULES.items()
                ]
            )
    return plan
