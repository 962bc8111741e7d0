"""Reading the audit chain. Callers check access to the subject first (others' subjects are 404)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from posfleet.audit.models import AuditEvent, AuditEventQuerySet
from posfleet.platform.clock import start_of


def events_for(subject_type: str, subject_id: str) -> AuditEventQuerySet:
    return AuditEvent.objects.for_subject(subject_type, subject_id).order_by("seq")


def events_for_any(pairs: list[tuple[str, str]]) -> AuditEventQuerySet:
    q = Q(pk__in=[])
    for subject_type, subject_id in pairs:
        q |= Q(subject_type=subject_type, subject_id=subject_id)
    return AuditEvent.objects.filter(q).order_by("seq")


def events_about(
    subject_type: str, subject_ids: QuerySet | Iterable[str] | None = None
) -> AuditEventQuerySet:
    """Events about subjects of one type; ``subject_ids`` (a values queryset or a list) narrows them."""
    events = AuditEvent.objects.filter(subject_type=subject_type)
    if subject_ids is not None:
        events = events.filter(subject_id__in=subject_ids)
    return events


def events_about_any_of(subject_type: str, subjects: QuerySet, key: str) -> AuditEventQuerySet:
    """Events about subjects of one type that are among ``subjects`` (a queryset whose field ``key``
    holds the subject id): one probe of ``subjects`` per event (``EXISTS``), so a window of events is
    checked event by event instead of listing every subject first (an agent's 200,000 terminals)."""
    return AuditEvent.objects.filter(
        Exists(subjects.filter(**{key: OuterRef("subject_id")})), subject_type=subject_type
    )


def per_day(days: Sequence[date]) -> dict[str, Count]:
    """One count per day of ``days`` (``d0``, ``d1``…) of the events within it, in the provider's zone:
    plain comparisons of ``occurred_at`` (a date truncated per event would call a function on every
    row: on SQLite, Python's). For ``aggregate`` or a grouped ``annotate``."""
    return {
        f"d{i}": Count(
            "pk", filter=Q(occurred_at__gte=start_of(day), occurred_at__lt=start_of(day + timedelta(days=1)))
        )
        for i, day in enumerate(days)
    }


def daily_counts(events: AuditEventQuerySet, since: datetime, until: datetime) -> dict[date, int]:
    """How many of ``events`` happened on each day (in the provider's time zone) from ``since`` to
    ``until``, in one query (``per_day``); days without any are absent."""
    first, last = timezone.localtime(since).date(), timezone.localtime(until).date()
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    # the window's own bounds are the filter's
    row = events.filter(occurred_at__gte=since, occurred_at__lte=until).order_by().aggregate(**per_day(days))
    return {day: row[f"d{i}"] for i, day in enumerate(days) if row[f"d{i}"]}
