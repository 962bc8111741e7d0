"""``Prepared``: a queryset compiled once returns what the queryset itself returns, for every value
bound, with Django's conversions (dates, UUIDs), reading committed state on every call."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test.utils import CaptureQueriesContext

from posfleet.platform.clock import now
from posfleet.platform.models import DataKey
from posfleet.platform.prepared import Prepared

pytestmark = pytest.mark.django_db

BY_KEK = Prepared(
    lambda kek, since: (
        DataKey.objects.filter(kek_id=kek, created_at__date__gte=since)
        .order_by("created_at")
        .values_list("id", "kek_id", "created_at", "shredded_at")
    ),
    "kek",
    dates=("since",),
)


def data_key(kek: str, days_ago: int = 0) -> DataKey:
    return DataKey.objects.create(
        id=uuid.uuid4(), kek_id=kek, wrapped=b"x" * 8, created_at=now() - timedelta(days=days_ago)
    )


def test_rows_equal_the_querysets_for_each_value_bound():
    keys = [data_key("k1", 3), data_key("k1", 0), data_key("k2", 1)]
    today = now().date()
    for kek in ("k1", "k2", "none"):
        for since in (today - timedelta(days=5), today, date(2999, 1, 1)):
            expected = list(BY_KEK.build(kek=kek, since=since))
            assert BY_KEK.rows(kek=kek, since=since) == expected
    first = BY_KEK.rows(kek="k1", since=today - timedelta(days=5))
    assert [row[0] for row in first] == [keys[0].id, keys[1].id]  # UUIDs, not their stored text
    assert all(isinstance(row[0], uuid.UUID) for row in first)
    assert first[0][2] == DataKey.objects.get(pk=keys[0].pk).created_at  # an aware datetime


def test_each_call_reads_committed_state_and_is_one_query():
    today = now().date()
    assert BY_KEK.rows(kek="k9", since=today) == []
    key = data_key("k9")
    with CaptureQueriesContext(connection) as queries:
        (row,) = BY_KEK.rows(kek="k9", since=today)
    assert (row[0], row[3]) == (key.pk, None)
    assert len(queries.captured_queries) == 1
    DataKey.objects.filter(pk=key.pk).update(shredded_at=now())
    assert BY_KEK.rows(kek="k9", since=today)[0][3] is not None


def test_a_value_the_query_does_not_bind_is_refused():
    unused = Prepared(lambda kek: DataKey.objects.values_list("id"), "kek")
    with pytest.raises(ImproperlyConfigured):
        unused.rows(kek="k1")
