"""Day totals carry the day whose run pays them (``settle_day``) and batches the days they pay
(``covers_after``, business_date]; the totals' ``settlement_batch`` mark goes (ADR 0009, "Days,
not marks"). Settlement then writes one batch per merchant and no longer updates every day total.

Existing rows: a closed total's settlement day is its batch's day; an open one's is its date, or
the day after the latest run when that date has been run (it waited or arrived late). A batch pays
the days after its merchant's previous batch.
"""

from django.db import migrations, models

FILL = [
    """UPDATE billing_dailytotal
          SET settle_day = (SELECT b.business_date FROM billing_settlementbatch AS b
                             WHERE b.id = billing_dailytotal.settlement_batch_id)
        WHERE settlement_batch_id IS NOT NULL""",
    """UPDATE billing_settlementbatch
          SET covers_after = (SELECT MAX(p.business_date) FROM billing_settlementbatch AS p
                               WHERE p.merchant_id = billing_settlementbatch.merchant_id
                                 AND p.business_date < billing_settlementbatch.business_date)""",
]


def fill(apps, schema_editor):
    from datetime import timedelta

    run = apps.get_model("billing", "SettlementRun")
    total = apps.get_model("billing", "DailyTotal")
    for sql in FILL:
        schema_editor.execute(sql)
    latest = run.objects.aggregate(day=models.Max("business_date"))["day"]
    open_totals = total.objects.filter(settlement_batch__isnull=True)
    if latest is None:
        open_totals.update(settle_day=models.F("txn_date"))
        return
    first_open = latest + timedelta(days=1)
    open_totals.filter(txn_date__gte=first_open).update(settle_day=models.F("txn_date"))
    open_totals.filter(txn_date__lt=first_open).update(settle_day=first_open)


class Migration(migrations.Migration):
    dependencies = [("billing", "0006_transaction_date_tid_index")]

    operations = [
        migrations.AddField(
            model_name="dailytotal",
            name="settle_day",
            field=models.DateField(null=True, verbose_name="settled by the run of"),
        ),
        migrations.AddField(
            model_name="settlementbatch",
            name="covers_after",
            field=models.DateField(blank=True, null=True, verbose_name="pays the days after"),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="dailytotal",
            name="settle_day",
            field=models.DateField(verbose_name="settled by the run of"),
        ),
        migrations.RemoveConstraint(model_name="dailytotal", name="daily_total_one_open"),
        migrations.RemoveField(model_name="dailytotal", name="settlement_batch"),
        migrations.AddConstraint(
            model_name="dailytotal",
            constraint=models.UniqueConstraint(
                fields=("merchant", "settle_day", "txn_date"), name="daily_total_one_per_settle_day"
            ),
        ),
        migrations.AddConstraint(
            model_name="dailytotal",
            constraint=models.CheckConstraint(
                condition=models.Q(settle_day__gte=models.F("txn_date")), name="daily_total_settled_after"
            ),
        ),
        migrations.AddIndex(
            model_name="dailytotal",
            index=models.Index(fields=["settle_day", "merchant"], name="daily_total_settle_idx"),
        ),
        migrations.AlterField(
            model_name="settlementbatch",
            name="merchant",
            field=models.ForeignKey(
                db_index=False,
                on_delete=models.deletion.PROTECT,
                related_name="settlements",
                to="parties.merchant",
            ),
        ),
    ]
