"""Day totals: settlement pays and closes a merchant's day totals instead of marking every
transaction (docs/adr/0009-transactions-and-settlement.md). Existing transactions are grouped into
totals by merchant, date and the batch that paid them, before the old column goes."""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import Count, Q, Sum


def group_existing(apps, schema_editor):
    Transaction = apps.get_model("billing", "Transaction")
    DailyTotal = apps.get_model("billing", "DailyTotal")
    sale = Q(kind="sale")
    groups = (
        Transaction.objects.filter(status="approved")
        .order_by()
        .values("merchant_id", "txn_date", "settlement_batch_id")
        .annotate(
            n=Count("id"),
            gross=Sum("amount_fen", filter=sale, default=0),
            refunds=Sum("amount_fen", filter=~sale, default=0),
            fees=Sum("fee_fen", filter=sale, default=0),
            returned=Sum("fee_fen", filter=~sale, default=0),
        )
    )
    for g in list(groups):
        total = DailyTotal.objects.create(
            merchant_id=g["merchant_id"],
            txn_date=g["txn_date"],
            txn_count=g["n"],
            gross_fen=g["gross"],
            refunds_fen=g["refunds"],
            fees_fen=g["fees"] - g["returned"],
            settlement_batch_id=g["settlement_batch_id"],
        )
        Transaction.objects.filter(
            status="approved",
            merchant_id=g["merchant_id"],
            txn_date=g["txn_date"],
            settlement_batch_id=g["settlement_batch_id"],
        ).update(daily_total=total)


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0003_default_plan"),
        ("fleet", "0003_statusperiod"),
        ("parties", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="DailyTotal",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("txn_date", models.DateField(verbose_name="date")),
                ("txn_count", models.PositiveIntegerField(default=0, verbose_name="transactions")),
                ("gross_fen", models.BigIntegerField(default=0, verbose_name="sales (fen)")),
                (
                    "refunds_fen",
                    models.BigIntegerField(default=0, verbose_name="refunds and reversals (fen)"),
                ),
                ("fees_fen", models.BigIntegerField(default=0, verbose_name="fees (fen)")),
            ],
            options={
                "verbose_name": "daily total",
                "verbose_name_plural": "daily totals",
                "ordering": ["txn_date", "merchant_id"],
            },
        ),
        migrations.RemoveIndex(
            model_name="transaction",
            name="txn_settle_idx",
        ),
        migrations.AddField(
            model_name="dailytotal",
            name="merchant",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="daily_totals",
                to="parties.merchant",
            ),
        ),
        migrations.AddField(
            model_name="dailytotal",
            name="settlement_batch",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="daily_totals",
                to="billing.settlementbatch",
            ),
        ),
        migrations.AddField(
            model_name="transaction",
            name="daily_total",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="transactions",
                to="billing.dailytotal",
            ),
        ),
        migrations.RunPython(group_existing, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="transaction",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("daily_total__isnull", False), ("status", "approved")),
                    models.Q(("daily_total__isnull", True), ("status", "declined")),
                    _connector="OR",
                ),
                name="transaction_in_daily_total",
            ),
        ),
        migrations.RemoveField(
            model_name="transaction",
            name="settlement_batch",
        ),
        migrations.AddConstraint(
            model_name="dailytotal",
            constraint=models.UniqueConstraint(
                condition=models.Q(("settlement_batch__isnull", True)),
                fields=("merchant", "txn_date"),
                name="daily_total_one_open",
            ),
        ),
    ]
