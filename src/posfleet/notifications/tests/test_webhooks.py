"""Webhook endpoints may not point into our own networks (SSRF): loopback, private, link-local."""

from __future__ import annotations

import pytest

from posfleet.notifications import channels
from posfleet.platform.errors import ValidationFailed

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://localhost:8443/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.9/hook",
        "https://169.254.169.254/latest/meta-data/",  # cloud metadata
        "https://[::1]/hook",
    ],
)
def test_webhooks_into_private_networks_are_refused(world, actor_of, settings, url):
    from posfleet.notifications.models import WebhookEndpoint
    from posfleet.notifications.services import webhook_endpoint_create

    settings.POSFLEET_NOTIFY = {**settings.POSFLEET_NOTIFY, "WEBHOOK_ALLOW_PRIVATE": False}
    with pytest.raises(ValidationFailed) as refused:
        webhook_endpoint_create(actor=actor_of(world.user("admin")), url=url, event_types=[])
    assert refused.value.params["field"] == "url"
    assert not WebhookEndpoint.objects.exists()


def test_the_sender_checks_again_at_delivery_time(settings):
    """A name that resolved to a public address when the endpoint was saved may point inside later."""
    settings.POSFLEET_NOTIFY = {**settings.POSFLEET_NOTIFY, "WEBHOOK_ALLOW_PRIVATE": False}
    with pytest.raises(channels.DeliveryError) as refused:
        channels.send_webhook(
            url="https://localhost/hook", msg_id="msg_1", payload={}, secrets_=["whsec_" + "A" * 32]
        )
    assert refused.value.permanent
    assert channels.private_address("127.0.0.1")
    assert not channels.private_address("8.8.8.8")


def test_signing_secrets_are_sealed_in_the_database(world, actor_of):
    from django.db import connection

    from posfleet.notifications.services import (
        endpoint_secrets,
        webhook_endpoint_create,
        webhook_secret_rotate,
    )

    admin = actor_of(world.user("admin"))
    endpoint, first = webhook_endpoint_create(actor=admin, url="https://hooks.example.com/in", event_types=[])
    endpoint, second = webhook_secret_rotate(actor=admin, endpoint_id=endpoint.pk)
    assert endpoint_secrets(endpoint) == [second, first]  # both sign during the overlap
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM notifications_webhookendpoint")
        row = cursor.fetchone()
    stored = b"".join(bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode() for v in row)
    for secret in (first, second):
        assert secret.encode() not in stored
        assert secret.removeprefix("whsec_").encode() not in stored
