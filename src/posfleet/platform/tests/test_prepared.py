"""``Prepared``: a queryset compiled once returns what the queryset itself returns, for every value
bound, with Django's conversions (dates, UUIDs), reading committed state on every call."""

from __future__ import annotations

import functools
import operator
import uuid
from datetime import date, datetime, timedelta

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, connections
from django.db.models import Q
from django.test.utils import CaptureQueriesContext

from posfleet.platform.clock import now
from posfleet.platform.models import DataKey
from posfleet.platform.prepared import MAX_LISTED, Prepared

pytestmark = pytest.mark.django_db

BY_KEK = Prepared(
    lambda kek, since: (
        DataKey.objects.filter(kek_id=kek, created_at__date__gte=since)
        .order_by("created_at")
        .values_list("id", "kek_id", "created_at", "shredded_at")
    ),
    kek=str,
    since=date,
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
    unused = Prepared(lambda kek: DataKey.objects.values_list("id"), kek=str)
    with pytest.raises(ImproperlyConfigured):
        unused.rows(kek="k1")


BY_KEKS = Prepared(
    lambda keks, after: (
        DataKey.objects.filter(kek_id__in=keks, created_at__gt=after)
        .order_by("id")
        .values_list("id", "kek_id")
    ),
    keks=[str],
    after=datetime,
)
BY_PAIRS = Prepared(
    lambda pairs: (
        DataKey.objects.filter(
            functools.reduce(
                operator.or_, (Q(kek_id=kek, created_at__date=day) for kek, day in pairs), Q(pk__in=[])
            )
        )
        .order_by("id")
        .values_list("id")
    ),
    pairs=[(str, date)],
)


def test_lists_ints_and_datetimes_bind_like_the_queryset():
    keys = [data_key(f"k{n % 4}", n % 3) for n in range(12)]
    cut = now() - timedelta(days=1, hours=1)
    for keks in (["k1"], ["k0", "k2"], ["k3", "k3", "k1"], ["none", "k2", "k0"]):
        for after in (cut, now() - timedelta(days=9), now() + timedelta(days=1)):
            assert BY_KEKS.rows(keks=keks, after=after) == list(BY_KEKS.build(keks=keks, after=after))
    assert len(BY_KEKS.rows(keks=["k0", "k1", "k2", "k3"], after=now() - timedelta(days=9))) == len(keys)
    today = now().date()
    for pairs in ([("k1", today)], [("k0", today), ("k1", today - timedelta(days=1)), ("k2", today)]):
        assert BY_PAIRS.rows(pairs=pairs) == list(BY_PAIRS.build(pairs=pairs))
        assert BY_PAIRS.rows(pairs=pairs)  # the case finds rows: the binding is tested, not only []
    assert BY_KEKS.rows(keks=[], after=cut) == []  # an empty list: the ORM's own answer, no query
    groups = [Group.objects.create(name=f"g{n}") for n in range(5)]
    by_pk = Prepared(
        lambda pks, name: (
            Group.objects.filter(pk__in=pks).exclude(name=name).order_by("pk").values_list("name")
        ),
        pks=[int],
        name=str,
    )
    chosen = [groups[4].pk, groups[1].pk, groups[2].pk]
    assert by_pk.rows(pks=chosen, name="g2") == [("g1",), ("g4",)] == list(by_pk.build(pks=chosen, name="g2"))


def test_lists_are_compiled_per_size_class_and_long_lists_use_the_orm():
    for n in range(4):
        data_key(f"k{n}")
    after = now() - timedelta(days=1)
    with CaptureQueriesContext(connection) as queries:
        for _ in range(3):
            BY_KEKS.rows(keks=["k1", "k2"], after=after)
            BY_KEKS.rows(keks=["k1"], after=after)
    assert len(queries.captured_queries) == 6
    for length in range(1, 21):  # each length padded (its last value repeated) to 1, 2, 4 … 32
        keks = [f"x{n}" for n in range(length - 1)] + [f"k{length % 4}"]
        found = BY_KEKS.rows(keks=keks, after=after)
        assert found == list(BY_KEKS.build(keks=keks, after=after))
        assert len(found) == 1
        keks.reverse()  # the padding repeats a value that matches nothing
        assert BY_KEKS.rows(keks=keks, after=after) == found
    cache = connections["default"].__dict__["_posfleet_prepared"]
    compiled = {lengths for (ident, lengths) in cache if ident == id(BY_KEKS)}
    assert compiled == {(1,), (2,), (4,), (8,), (16,), (32,)}
    many = [f"x{n}" for n in range(MAX_LISTED)] + ["k1"]
    assert BY_KEKS.rows(keks=many, after=after) == list(BY_KEKS.build(keks=many, after=after))
    assert all(len(lengths) != 1 or lengths[0] <= MAX_LISTED for _ident, lengths in cache)


def test_a_value_the_orm_rewrites_is_refused():
    pattern = Prepared(lambda part: DataKey.objects.filter(kek_id__contains=part).values_list("id"), part=str)
    with pytest.raises(ImproperlyConfigured):
        pattern.rows(part="k")
    with pytest.raises(ImproperlyConfigured):
        Prepared(lambda flag: DataKey.objects.values_list("id"), flag=bool)  # type: ignore[arg-type]


def test_objects_are_the_models_the_orm_would_load():
    keys = [data_key("k5", n) for n in range(3)]
    whole = Prepared(
        lambda kek: (
            DataKey.objects.filter(kek_id=kek)
            .order_by("created_at")
            .values_list(*(f.attname for f in DataKey._meta.concrete_fields))
        ),
        kek=str,
    )
    loaded = whole.objects(kek="k5")
    assert [k.pk for k in loaded] == [k.pk for k in sorted(keys, key=lambda k: k.created_at)]
    assert all(isinstance(k, DataKey) and not k.get_deferred_fields() for k in loaded)
    assert [(k.kek_id, k.created_at, bytes(k.wrapped)) for k in loaded] == [
        (k.kek_id, k.created_at, bytes(k.wrapped))
        for k in DataKey.objects.filter(kek_id="k5").order_by("created_at")
    ]
    part = Prepared(lambda kek: DataKey.objects.filter(kek_id=kek).values_list("id", "kek_id"), kek=str)
    (one, *_rest) = part.objects(kek="k5")
    assert one.get_deferred_fields() >= {"wrapped", "created_at"}
