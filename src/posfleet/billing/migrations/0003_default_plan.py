"""The default rate plan, from the source articles: credit 0.60 %; QR/scan (WeChat Pay, Alipay,
Huabei, JD Baitiao) 0.48 %; debit 0.55 % capped at 20.00 CNY. Contactless cards are priced like credit
cards and foreign cards at 1.25 % (our assumption; the articles are silent). Changes to it are new
versions from a date (billing.services.plans.plan_version_add)."""

from datetime import date
from decimal import Decimal

from django.db import migrations

RULES = {
    "credit": (Decimal("0.006000"), None),
    "debit": (Decimal("0.005500"), 2000),
    "qr": (Decimal("0.004800"), None),
    "nfc": (Decimal("0.006000"), None),
    "foreign": (Decimal("0.012500"), None),
}


def seed(apps, schema_editor):
    RatePlan = apps.get_model("billing", "RatePlan")
    RatePlanVersion = apps.get_model("billing", "RatePlanVersion")
    RateRule = apps.get_model("billing", "RateRule")
    plan, created = RatePlan.objects.get_or_create(code="standard", defaults={"name": "标准费率 Standard"})
    if not created:
        return
    version = RatePlanVersion.objects.create(plan=plan, number=1, effective_from=date(2020, 1, 1),
                                             settlement_cycle="t1", d0_surcharge_rate=Decimal("0.000500"),
                                             note="Source articles' figures")
    for method, (rate, cap) in RULES.items():
        RateRule.objects.create(version=version, method=method, rate=rate, cap_fen=cap)


class Migration(migrations.Migration):
    dependencies = [("billing", "0002_ledger_guards")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
