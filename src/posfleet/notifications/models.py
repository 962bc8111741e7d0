"""Deliveries of notices (e-mail, SMS, webhook, in-app), the in-app inbox, and webhook endpoints.

A ``Delivery`` is one event to one recipient over one channel. It holds no address: the address is
looked up when it is sent (a user's e-mail, the merchant's contact, the endpoint's URL), so changing a
contact changes where retries go and no personal data is copied into this table.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class Channel(models.TextChoices):
    EMAIL = "email", _("e-mail")
    SMS = "sms", _("SMS")
    WEBHOOK = "webhook", _("webhook")
    INBOX = "inbox", _("in-app inbox")


class Delivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        SENT = "sent", _("sent")
        FAILED = "failed", _("failed, will retry")
        DEAD = "dead", _("dead (gave up)")

    message = models.ForeignKey(
        "platform.OutboxMessage", on_delete=models.PROTECT, related_name="deliveries", verbose_name=_("event")
    )
    # What is said: a key of notifications/notices.py ("terminal.suspended", "escalation", "webhook").
    notice = models.CharField(_("notice"), max_length=64)
    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices)
    organisation = models.ForeignKey(
        "iam.Organisation",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("recipient organisation"),
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("recipient user"),
    )
    endpoint = models.ForeignKey(
        "notifications.WebhookEndpoint",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="deliveries",
        verbose_name=_("webhook endpoint"),
    )
    language = models.CharField(_("language"), max_length=8, default="zh-hans")
    # One delivery per (event, channel, recipient): fanning an event out twice creates nothing new.
    dedupe_key = models.CharField(max_length=160, unique=True, editable=False)
    escalation_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="escalations"
    )
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    # The class of the last error and a short reason (an HTTP status, an SMTP code): never an address.
    last_error = models.CharField(_("last error"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="delivery_due_idx")]

    def __str__(self) -> str:
        return f"{self.notice} via {self.channel} ({self.status})"


class InboxItem(models.Model):
    """A notice in a user's in-app inbox (the console's bell).

    It is shown in the reader's language of the moment, rendered from its kind (the delivery's notice)
    and ``params`` (language-neutral: ISO dates, integer fen; ``notifications.selectors.inbox_text``).
    ``title`` and ``body`` keep the text as it was delivered: what rows from before ``params`` show.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="inbox_items")
    delivery = models.OneToOneField(Delivery, on_delete=models.PROTECT, related_name="inbox_item")
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("message"))
    params = models.JSONField(null=True, blank=True, editable=False)
    link = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(_("received"))
    read_at = models.DateTimeField(_("read"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("inbox item")
        verbose_name_plural = _("inbox items")
        indexes = [models.Index(fields=["user", "read_at"], name="inbox_unread_idx")]

    def __str__(self) -> str:
        return self.title


class WebhookEndpoint(models.Model):
    """An integrator's URL that receives its organisation's events, signed per Standard Webhooks.

    Rotation keeps the previous secret valid until ``previous_valid_until``: deliveries carry both
    signatures meanwhile, so the receiver can switch without losing an event.
    """

    organisation = models.ForeignKey(
        "iam.Organisation", on_delete=models.PROTECT, related_name="webhook_endpoints"
    )
    url = models.URLField(_("URL"), max_length=500)
    description = models.CharField(_("description"), max_length=200, blank=True)
    # Event types to send; empty means every event of the organisation.
    event_types = models.JSONField(_("event types"), default=list, blank=True)
    # The signing secrets, sealed with the endpoint's own data key (platform.keyring): a copy of the
    # database alone cannot sign (or forge) deliveries. See notifications.services.endpoint_secrets.
    data_key = models.ForeignKey("platform.DataKey", on_delete=models.PROTECT, related_name="+")
    secret_sealed = models.BinaryField(editable=False)
    previous_secret_sealed = models.BinaryField(default=b"", blank=True, editable=False)
    previous_valid_until = models.DateTimeField(null=True, blank=True, editable=False)
    active = models.BooleanField(pgettext_lazy("webhook endpoint", "active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")

    def __str__(self) -> str:
        return self.description or f"webhook {self.pk}"

    def wants(self, event_type: str) -> bool:
        return self.active and (not self.event_types or event_type in self.event_types)
