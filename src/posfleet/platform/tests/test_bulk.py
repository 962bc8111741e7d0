"""The bulk writers' answers: ``insert_returning`` gives each new row's id under its own key (a small
group by one INSERT … RETURNING, a large one by COPY on PostgreSQL), ``add_rows`` adds to the row of
the same key and creates the missing ones — on a table with a date in its key (SQLite returns dates
as it stored them)."""

from __future__ import annotations

from datetime import date

import pytest
from django.db import transaction

from posfleet.billing.models import SalesMonth
from posfleet.platform.bulk import COPY_FROM, add_rows, insert_returning

pytestmark = pytest.mark.django_db

FIELDS = ("agent", "month", "method", "model", "status", "sales", "amount_fen")
KEY = ("agent", "month", "method", "model", "status")
ADDING = ("sales", "amount_fen")


def stored() -> dict[tuple[object, ...], tuple[int, int, int]]:
    return {
        (row.agent_id, row.month, row.method, row.model_id, row.status): (row.pk, row.sales, row.amount_fen)
        for row in SalesMonth.objects.all()
    }


def months(n: int) -> list[date]:
    return [date(2000 + i // 12, i % 12 + 1, 1) for i in range(n)]


@pytest.mark.parametrize("n", [3, COPY_FROM + 50], ids=["a group", "a large batch"])
def test_each_new_row_comes_back_under_its_own_key(world, n) -> None:  # type: ignore[no-untyped-def]
    agent, model = world.agent_a.pk, world.model.pk
    rows = [
        (agent, month, "qr", model, "approved", i + 1, 100 * (i + 1)) for i, month in enumerate(months(n))
    ]
    rows.reverse()  # not in key order: the ids are matched by key, not by position

    ids = insert_returning(SalesMonth, FIELDS, rows, KEY)

    table = stored()
    assert len(ids) == len(table) == n
    for agent_id, month, method, model_id, status, sales, amount in rows:
        key = (agent_id, month, method, model_id, status)
        assert ids[key] == table[key][0]
        assert table[key][1:] == (sales, amount)


def test_add_rows_adds_to_the_row_of_the_same_key_and_creates_the_others(world) -> None:  # type: ignore[no-untyped-def]
    agent, model = world.agent_a.pk, world.model.pk
    may, june = date(2026, 5, 1), date(2026, 6, 1)
    kept = SalesMonth.objects.create(
        agent_id=agent, month=may, method="debit", model_id=model, status="approved", sales=9, amount_fen=900
    )
    added_to = SalesMonth.objects.create(
        agent_id=agent, month=may, method="qr", model_id=model, status="approved", sales=2, amount_fen=100
    )

    ids = add_rows(
        SalesMonth,
        FIELDS,
        [(agent, may, "qr", model, "approved", 1, 50), (agent, june, "qr", model, "approved", 3, 30)],
        KEY,
        ADDING,
    )

    table = stored()
    assert table[(agent, may, "qr", model, "approved")] == (added_to.pk, 3, 150)
    new = table[(agent, june, "qr", model, "approved")]
    assert new[1:] == (3, 30)
    assert table[(agent, may, "debit", model, "approved")] == (kept.pk, 9, 900)  # untouched
    assert ids == {
        (agent, may, "qr", model, "approved"): added_to.pk,
        (agent, june, "qr", model, "approved"): new[0],
    }


def test_add_rows_refuses_two_rows_of_one_key_and_writes_nothing(world) -> None:  # type: ignore[no-untyped-def]
    agent, model = world.agent_a.pk, world.model.pk
    may = date(2026, 5, 1)
    twice = [(agent, may, "qr", model, "approved", 1, 50), (agent, may, "qr", model, "approved", 2, 70)]
    with pytest.raises(ValueError, match="two rows with the same"), transaction.atomic():
        add_rows(SalesMonth, FIELDS, twice, KEY, ADDING)
    assert not SalesMonth.objects.exists()
