"""Reading the audit chain. Callers check access to the subject first (others' subjects are 404)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from posfleet.audit.models import AuditEvent, AuditEventQuerySet


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


def daily_counts(events: AuditEventQuerySet, since: datetime, until: datetime) -> dict[date, int]:
    """How many of ``events`` happened on each day (in the provider's time zone) from ``since`` to
    ``until``: one conditional count per day in one query, plain comparisons of ``occurred_at`` (a
    date truncated per event would call a function on every row: on SQLite, Python's)."""
    zone = timezone.get_current_timezone()
    first = timezone.localtime(since, zone).date()
    last = timezone.localtime(until, zone).date()
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]

    def start(day: date) -> datetime:
        return datetime(day.year, day.month, day.day, tzinfo=zone)

    counts = {  # the window's own bounds are the filter's below
        f"d{i}": Count(
            "id", filter=Q(occurred_at__gte=start(day), occurred_at__lt=start(day + timedelta(days=1)))
        )
        for i, day in enumerate(days)
    }
    row = events.filter(occurred_at__gte=since, occurred_at__lte=until).order_by().aggregate(**counts)
    return {day: row[f"d{i}"] for i, day in enumerate(days) if row[f"d{i}"]}
