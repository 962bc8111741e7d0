"""Webhook signing secrets move from plain columns to values sealed with a data key per endpoint."""

import django.db.models.deletion
from django.db import migrations, models


def seal_existing(apps, schema_editor):
    from posfleet.platform import keyring

    Endpoint = apps.get_model("notifications", "WebhookEndpoint")
    for endpoint in Endpoint.objects.all():
        key = keyring.new_key()
        endpoint.data_key_id = key.pk
        endpoint.secret_sealed = keyring.seal(key, endpoint.secret.encode(), f"webhook_endpoint:{key.pk}:secret")
        if endpoint.previous_secret:
            endpoint.previous_secret_sealed = keyring.seal(
                key, endpoint.previous_secret.encode(), f"webhook_endpoint:{key.pk}:previous"
            )
        endpoint.save(update_fields=["data_key", "secret_sealed", "previous_secret_sealed"])


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0001_initial"),
        ("platform", "0004_jobs"),
    ]

    operations = [
        migrations.AddField(
            model_name="webhookendpoint",
            name="data_key",
            field=models.ForeignKey(
                null=True, on_delete=django.db.models.deletion.PROTECT, related_name="+", to="platform.datakey"
            ),
        ),
        migrations.AddField(
            model_name="webhookendpoint",
            name="secret_sealed",
            field=models.BinaryField(default=b"", editable=False),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="webhookendpoint",
            name="previous_secret_sealed",
            field=models.BinaryField(blank=True, default=b"", editable=False),
        ),
        migrations.RunPython(seal_existing, migrations.RunPython.noop),
        migrations.RemoveField(model_name="webhookendpoint", name="secret"),
        migrations.RemoveField(model_name="webhookendpoint", name="previous_secret"),
        migrations.AlterField(
            model_name="webhookendpoint",
            name="data_key",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT, related_name="+", to="platform.datakey"
            ),
        ),
    ]
