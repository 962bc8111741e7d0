"""Sales by month (``billing.SalesMonth``, docs/adr/0036), counted once from the sales there are, each
under its merchant's agent of today (who the agent was at an older sale is not recorded anywhere);
ingest keeps them from here on, under the agent of the moment."""

import django.db.models.deletion
from django.db import migrations, models

MONTH = {
    "postgresql": "CAST(date_trunc('month', t.txn_date) AS date)",
    "sqlite": "date(t.txn_date, 'start of month')",
}
COUNT = """
INSERT INTO billing_salesmonth (agent_id, month, method, model_id, status, sales, amount_fen)
SELECT m.agent_id, {month}, t.method, d.model_id, t.status, COUNT(*), SUM(t.amount_fen)
  FROM billing_transaction AS t
  JOIN fleet_terminal AS d ON d.id = t.terminal_id
  JOIN parties_merchant AS m ON m.id = t.merchant_id
 WHERE t.kind = 'sale'
 GROUP BY m.agent_id, {month}, t.method, d.model_id, t.status
"""


def count(apps, schema_editor):
    schema_editor.execute(COUNT.format(month=MONTH[schema_editor.connection.vendor]))


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0015_contract_status_words'),
        ('fleet', '0010_sn_text_search'),
        ('parties', '0005_store_coordinates'),
    ]

    operations = [
        migrations.CreateModel(
            name='SalesMonth',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('month', models.DateField(verbose_name='month')),
                ('method', models.CharField(choices=[('credit', 'credit card'), ('debit', 'debit card'), ('qr', 'QR / scan (WeChat Pay, Alipay, Huabei, JD Baitiao)'), ('nfc', 'contactless / NFC'), ('foreign', 'foreign card')], max_length=16, verbose_name='payment method')),
                ('status', models.CharField(choices=[('approved', 'approved'), ('declined', 'declined')], max_length=10, verbose_name='status')),
                ('sales', models.BigIntegerField(verbose_name='sales')),
                ('amount_fen', models.BigIntegerField(verbose_name='amount (fen)')),
                ('agent', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='parties.agent')),
                ('model', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='fleet.terminalmodel')),
            ],
            options={
                'verbose_name': 'sales of a month',
                'verbose_name_plural': 'sales by month',
                'indexes': [models.Index(fields=['month'], name='sales_month_month_idx')],
                'constraints': [models.UniqueConstraint(fields=('agent', 'month', 'method', 'model', 'status'), name='sales_month_one_row'), models.CheckConstraint(condition=models.Q(('amount_fen__gt', 0), ('sales__gt', 0)), name='sales_month_positive')],
            },
        ),
        migrations.RunPython(count, migrations.RunPython.noop),
    ]
