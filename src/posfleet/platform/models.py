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


class DataKey(models.Model):
    """One data subject's encryption key (a merchant's, an applicant's), wrapped by the master key.

    Personal data is sealed with the subject's key (``platform/keyring.py``). Destroying the key
    (crypto-shredding) empties ``wrapped``: every copy of the ciphertext, in backups and dead rows
    included, becomes unreadable at once, while the row stays so that references still resolve.
    """

    id = models.UUIDField(primary_key=True, editable=False)
    kek_id = models.CharField(max_length=16, help_text="Which master key wraps this key.")
    wrapped = models.BinaryField()
    created_at = models.DateTimeField()
    shredded_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"data key {self.id}"


class Job(models.Model):
    """A long piece of work a person started (a bulk action, an import, an export), run by the worker
    while the page shows its progress (``platform/jobs.py``)."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("waiting")
        RUNNING = "running", _("running")
        DONE = "done", _("done")
        FAILED = "failed", _("failed")

    id = models.UUIDField(primary_key=True, editable=False)
    kind = models.CharField(max_length=32)
    user = models.ForeignKey("iam.User", on_delete=models.CASCADE, related_name="jobs")
    params = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(null=True, blank=True)
    done = models.PositiveIntegerField(default=0)
    result = models.JSONField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "-created_at"], name="job_user_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.id}"

    @property
    def percent(self) -> int | None:
        if not self.total:
            return 100 if self.status == self.Status.DONE else None
        return min(100, self.done * 100 // self.total)

    @property
    def finished(self) -> bool:
        return self.status in {self.Status.DONE, self.Status.FAILED}
