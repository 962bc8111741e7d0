"""What a refusal must leave untouched (STYLE §12): the subject's rows, the audit chain, the outbox and
the ledger. ``with assert_nothing_recorded(terminal), pytest.raises(GuardFailed): ...``"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from django.db.models import Max, Model, QuerySet

from posfleet.audit.models import AuditEvent
from posfleet.billing.models import Entry, Journal
from posfleet.platform.models import OutboxMessage


def _rows(subject: Model | QuerySet[Any]) -> Any:
    if isinstance(subject, QuerySet):
        return list(subject.order_by("pk").values())
    return type(subject)._default_manager.filter(pk=subject.pk).values().first()


def _state(subjects: Sequence[Model | QuerySet[Any]]) -> dict[str, Any]:
    return {
        "rows": [_rows(subject) for subject in subjects],
        "audit": AuditEvent.objects.count(),
        "outbox": OutboxMessage.objects.count(),
        "journals": Journal.objects.count(),
        "entries": Entry.objects.count(),
    }


@contextmanager
def assert_nothing_recorded(*subjects: Model | QuerySet[Any], audit: Sequence[str] = ()) -> Iterator[None]:
    """Assert on exit that the block changed none of ``subjects`` (model instances: their row read
    again; querysets: all their rows), added no audit event, outbox message, journal or ledger entry.

    ``audit`` names, in order, the audit events the refusal itself is meant to leave (a failed step-up
    is audited, for instance); any other new event fails.
    """
    before = _state(subjects)
    last_seq = AuditEvent.objects.aggregate(last=Max("seq"))["last"] or 0
    yield
    recorded = list(
        AuditEvent.objects.filter(seq__gt=last_seq).order_by("seq").values_list("event_type", flat=True)
    )
    assert recorded == list(audit), f"audit events recorded by a refusal: {recorded}"
    after = _state(subjects)
    after["audit"] -= len(recorded)
    changed = {key: (before[key], after[key]) for key in before if after[key] != before[key]}
    assert not changed, f"a refusal changed (before, after): {changed}"
