"""Shared-kernel tables: the transactional outbox and named counters."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class OutboxMessage(models.Model):
    """A domain event written in the same transaction as the change that caused it.

    A dispatcher (the notifications context) delivers pending messages after commit, with retries;
    a change that rolls back leaves no message, so receivers never hear of something that did not happen.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        SENT = "sent", _("sent")
        FAILED = "failed", _("failed")
        DEAD = "dead", _("dead")

    event_id = models.UUIDField(unique=True, editable=False)
    event_type = models.CharField(max_length=64)  # no index: nothing looks messages up by type
    aggregate_type = models.CharField(max_length=32)
    aggregate_id = models.CharField(max_length=64)
    organisation_ids = models.JSONField(default=list, help_text="Organisations that may see this event.")
    payload = models.JSONField(default=dict)
    occurred_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="outbox_due_idx")]

    def __str__(self) -> str:
        return f"{self.event_type} {self.aggregate_type}:{self.aggregate_id}"


class Counter(models.Model):
    """A named, gap-tolerant, never-reused sequence (e.g. terminal IDs)."""

    name = models.CharField(max_length=64, primary_key=True)
    value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}={self.value}"
