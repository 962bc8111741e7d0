"""The audit chain: one append-only, hash-chained row per change, written in the change's transaction."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _

from posfleet.audit.vocabulary import ActorKind


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs: Any) -> int:
        raise TypeError("audit events are append-only")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise TypeError("audit events are append-only")

    def for_subject(self, subject_type: str, subject_id: str) -> AuditEventQuerySet:
        return self.filter(subject_type=subject_type, subject_id=subject_id)


class AuditEvent(models.Model):
    seq = models.BigIntegerField(unique=True, editable=False)
    occurred_at = models.DateTimeField(editable=False, db_index=True)
    # One of audit.vocabulary.EventType (not declared as `choices`: a new event type needs no migration).
    event_type = models.CharField(max_length=48, editable=False)
    actor_kind = models.CharField(max_length=8, choices=ActorKind.choices, editable=False)
    actor_id = models.BigIntegerField(null=True, blank=True, editable=False)
    actor_label = models.CharField(max_length=150, blank=True, editable=False)
    organisation_id = models.BigIntegerField(null=True, blank=True, editable=False)
    subject_type = models.CharField(max_length=32, editable=False)
    subject_id = models.CharField(max_length=64, editable=False)
    reason = models.CharField(max_length=48, blank=True, editable=False)
    note = models.TextField(blank=True, editable=False)
    outcome = models.CharField(max_length=16, default="success", editable=False)
    request_id = models.CharField(max_length=64, blank=True, editable=False)
    source_ip = models.GenericIPAddressField(null=True, blank=True, editable=False)
    before = models.JSONField(default=dict, editable=False)
    after = models.JSONField(default=dict, editable=False)
    prev_hash = models.CharField(max_length=64, editable=False)
    hash = models.CharField(max_length=64, editable=False)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["seq"]
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        indexes = [
            models.Index(fields=["subject_type", "subject_id", "seq"], name="audit_subject_idx"),
            models.Index(fields=["event_type", "occurred_at"], name="audit_type_time_idx"),
            # The dashboard's activity: events about terminals over the last 30 days, a range.
            models.Index(fields=["subject_type", "occurred_at"], name="audit_subject_time_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.event_type} {self.subject_type}:{self.subject_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not kwargs.get("force_insert"):
            raise TypeError("audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise TypeError("audit events are append-only")


class AuditChainHead(models.Model):
    """One row: the last sequence number and hash. Writers lock it, which orders the chain.

    It also lets ``verify`` detect a truncated tail (rows cut from the end).
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="0" * 64)

    def __str__(self) -> str:
        return f"head #{self.last_seq}"
