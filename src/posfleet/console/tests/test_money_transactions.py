"""Transaction search (filters, amounts typed in yuan, sorting, pages, htmx) and its streaming CSV, Excel
and Parquet exports: read back exactly, formulas neutralised, one audit event each, never another
merchant's rows."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from posfleet.audit.models import AuditEvent
from posfleet.audit.vocabulary import EventType
from posfleet.billing import exports
from posfleet.billing.models import Transaction
from posfleet.billing.tests.test_statements import ingest, txn
from posfleet.console.tests.test_money_access import MID_A, MID_B, money  # noqa: F401  (fixture)
from posfleet.platform import exports as shared_exports
from posfleet.testing.refusals import assert_nothing_recorded

URL = "/console/transactions/"


def shown(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'data-txn="(\d+)"', html)]


def ids(*conditions, **filters) -> list[int]:
    return list(
        Transaction.objects.filter(*conditions, **filters)
        .order_by("-occurred_at", "-id")
        .values_list("pk", flat=True)
    )


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_each_sees_only_its_own_transactions(money, login):  # noqa: F811
    assert shown(login("merchant_a").get(URL).content.decode()) == ids(merchant__mid=MID_A)
    assert shown(login("merchant_b").get(URL).content.decode()) == ids(merchant__mid=MID_B)
    assert shown(login("agent_b").get(URL).content.decode()) == ids(merchant__mid=MID_B)
    assert set(shown(login("admin").get(URL).content.decode())) == set(ids())
    # a merchant cannot widen its scope with the merchant filter (the field is not even there)
    html = login("merchant_b").get(URL, {"merchant": MID_A}).content.decode()
    assert shown(html) == ids(merchant__mid=MID_B)
    assert 'name="merchant"' not in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"method": "debit"}, {"amount_fen": 500000}),
        ({"kind": "refund"}, {"kind": "refund"}),
        ({"status": "declined"}, {"status": "declined"}),
        (
            {"amount_min": "100", "amount_max": "1,000.00元"},
            {"amount_fen__gte": 10000, "amount_fen__lte": 100000},
        ),
        ({"amount_min": "¥25"}, {"amount_fen__gte": 2500}),
        (
            {"date_from": "2026-10-05", "date_to": "2026-10-06"},
            {"txn_date__range": (date(2026, 10, 5), date(2026, 10, 6))},
        ),
        ({"terminal": "sn-stmt-0001"}, {"terminal__sn": "SN-STMT-0001"}),
    ],
)
def test_filters(money, login, query, expected):  # noqa: F811
    html = login("merchant_a").get(URL, query).content.decode()
    assert shown(html) == ids(merchant__mid=MID_A, **expected)
    assert 'data-testid="filter-errors"' not in html


def test_the_tid_the_batch_and_the_merchant_filters(money, login):  # noqa: F811
    client = login("admin")
    assert shown(client.get(URL, {"terminal": money.terminal_a.tid}).content.decode()) == ids(
        terminal=money.terminal_a
    )
    assert shown(client.get(URL, {"batch": money.batch.pk}).content.decode()) == ids(
        money.batch.pays("daily_total__")
    )
    assert shown(client.get(URL, {"merchant": MID_B}).content.decode()) == ids(merchant__mid=MID_B)


def test_an_amount_that_is_not_one_is_shown_and_left_out(money, login):  # noqa: F811
    client = login("merchant_a")
    with assert_nothing_recorded(Transaction.objects.all()):
        html = client.get(URL, {"amount_min": "abc", "method": "qr"}).content.decode()
    assert "is not an amount" in html.split('data-testid="filter-errors"')[1]
    assert shown(html) == ids(merchant__mid=MID_A, method="qr")


def test_sorting_and_pages(money, login):  # noqa: F811
    client = login("admin")
    ascending = shown(client.get(URL, {"sort": "amount"}).content.decode())
    amounts = [Transaction.objects.get(pk=pk).amount_fen for pk in ascending]
    assert amounts == sorted(amounts)
    descending = shown(client.get(URL, {"sort": "-fee"}).content.decode())
    fees = [Transaction.objects.get(pk=pk).fee_fen for pk in descending]
    assert fees == sorted(fees, reverse=True)
    response = client.get(URL, {"sort": "amount", "method": "credit"}, HTTP_HX_REQUEST="true")
    assert "<html" not in response.content.decode()
    assert response["HX-Push-Url"] == "/console/transactions/?method=credit&sort=amount"


def test_a_long_history_is_counted_up_to_a_cap(money, login, monkeypatch):  # noqa: F811
    """Past the cap the list says "more than N" and asks for narrower dates, not an exact total that
    would count every row of years of sales on each page load (console/paging.py)."""
    from posfleet.console import paging
    from posfleet.console.views.money import forms

    everything = ids()
    assert len(everything) > 4
    monkeypatch.setattr(paging, "COUNT_CAP", 4)
    monkeypatch.setattr(paging.CappedPaginator.__init__, "__defaults__", (4,))
    monkeypatch.setattr(forms, "PAGE_SIZE", 2)
    monkeypatch.setattr("posfleet.console.views.money.transactions.PAGE_SIZE", 2)
    client = login("admin")
    html = client.get(URL).content.decode()
    summary = re.search(r'data-testid="result-count">(.*?)</span>', html, re.S).group(1)
    assert "Showing 1–2 of more than 4 transactions (narrow the dates to reach older ones)" in " ".join(
        summary.split()
    )
    assert "Page 1 of the first 2" in html
    assert shown(html) == everything[:2]
    assert shown(client.get(URL, {"page": 2}).content.decode()) == everything[2:4]
    assert shown(client.get(URL, {"page": 3}).content.decode()) == everything[2:4]  # the last page in reach
    narrow = client.get(URL, {"merchant": MID_B}).content.decode()  # within the cap: the exact total
    total = len(ids(merchant__mid=MID_B))
    assert 0 < total <= 4
    assert f"of {total} transactions" in " ".join(narrow.split())
    assert "more than" not in narrow


def test_csv_export_reads_back_in_scope_and_is_audited(money, login):  # noqa: F811
    response = login("merchant_a").get("/console/transactions/export/csv/", {"method": "credit"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="transactions-')
    rows = list(csv.reader(io.StringIO(body(response).decode("utf-8-sig"))))
    assert tuple(rows[0]) == exports.HEADER
    wanted = Transaction.objects.filter(merchant__mid=MID_A, method="credit").order_by("occurred_at", "id")
    assert [int(r[0]) for r in rows[1:]] == [t.pk for t in wanted]
    first = dict(zip(rows[0], rows[1], strict=True))
    t = wanted[0]
    assert (first["merchant_mid"], first["amount_fen"], first["fee_fen"], first["currency"]) == (
        MID_A,
        str(t.amount_fen),
        str(t.fee_fen),
        "CNY",
    )
    assert first["occurred_at"] == "2026-09-30T10:41:00+08:00"
    event = AuditEvent.objects.get(event_type=EventType.TRANSACTIONS_EXPORTED)
    assert (event.actor_label, event.outcome, event.after["format"], event.after["rows"]) == (
        "merchant_a",
        "success",
        "csv",
        len(rows) - 1,
    )
    assert event.after["filters"] == {"methods": ["credit"]}


def test_csv_cells_that_would_be_formulas_are_neutralised(money, login):  # noqa: F811
    for n, evil in enumerate(('=HYPERLINK("http://x")', "@SUM(A1)", "+1+1", "-2+3")):
        ingest(txn(money.terminal_b, 950 + n, 100, day=date(2026, 10, 20), external_id=evil))
    rows = list(
        csv.DictReader(
            io.StringIO(
                body(login("merchant_b").get("/console/transactions/export/csv/")).decode("utf-8-sig")
            )
        )
    )
    externals = sorted(r["external_id"] for r in rows if r["external_id"])
    assert externals == ["'+1+1", "'-2+3", '\'=HYPERLINK("http://x")', "'@SUM(A1)"]
    assert {r["merchant_mid"] for r in rows} == {MID_B}


def excel_as_csv_text(column: str, value) -> str:
    """An Excel cell written as the CSV writes it (times to the second: Excel keeps no fractions; a
    day comes back as a date-time at midnight)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat() if column == "txn_date" else value.isoformat(sep="T")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def csv_text_to_the_second(column: str, text: str) -> str:
    if column == "occurred_at":  # local ISO 8601 with offset and fractions -> Excel's local, naive
        return datetime.fromisoformat(text).replace(tzinfo=None, microsecond=0).isoformat(sep="T")
    return text


def test_excel_export_has_the_csv_rows_as_typed_cells_and_is_audited(money, login):  # noqa: F811
    ingest(txn(money.terminal_b, 990, 100, day=date(2026, 10, 20), external_id="=1+1"))
    client = login("merchant_b")
    response = client.get("/console/transactions/export/xlsx/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert re.fullmatch(
        r'attachment; filename="transactions-\d{8}-\d{6}\.xlsx"', response["Content-Disposition"]
    )
    sheet = openpyxl.load_workbook(io.BytesIO(body(response))).active
    excel = [list(row) for row in sheet.iter_rows(values_only=True)]
    rows = list(
        csv.reader(io.StringIO(body(client.get("/console/transactions/export/csv/")).decode("utf-8-sig")))
    )

    assert tuple(excel[0]) == tuple(rows[0]) == exports.HEADER
    assert len(excel) == len(rows) > 1
    header = rows[0]
    for got, want in zip(excel[1:], rows[1:], strict=True):
        assert [excel_as_csv_text(c, v) for c, v in zip(header, got, strict=True)] == [
            csv_text_to_the_second(c, v) for c, v in zip(header, want, strict=True)
        ]
    first = dict(zip(header, excel[1], strict=True))
    assert isinstance(first["amount_fen"], int)  # numbers, in fen as the header says
    assert isinstance(first["fee_fen"], int)
    assert type(first["occurred_at"]) is datetime  # real Excel dates and times, not text
    assert isinstance(first["txn_date"], datetime)  # Excel keeps a day as a date-time at midnight
    assert "'=1+1" in [r[header.index("external_id")] for r in excel[1:]]  # formulas neutralised
    assert {r[header.index("merchant_mid")] for r in excel[1:]} == {MID_B}  # its own rows only
    formats = list(
        AuditEvent.objects.filter(event_type=EventType.TRANSACTIONS_EXPORTED)
        .order_by("id")
        .values_list("after__format", "after__rows", "actor_label", "outcome")
    )
    assert formats == [
        ("xlsx", len(excel) - 1, "merchant_b", "success"),
        ("csv", len(rows) - 1, "merchant_b", "success"),
    ]


def test_parquet_export_has_an_explicit_schema_and_exact_values(money, login):  # noqa: F811
    response = login("agent_a").get("/console/transactions/export/parquet/")
    assert response["Content-Type"] == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(body(response)))
    assert table.schema.field("amount_fen").type == pa.int64()
    assert table.schema.field("fee_fen").type == pa.int64()
    assert table.schema.field("occurred_at").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("txn_date").type == pa.date32()
    data = table.to_pylist()
    expected = Transaction.objects.filter(merchant__mid=MID_A).order_by("occurred_at", "id")
    assert [r["id"] for r in data] == [t.pk for t in expected]  # agent A: merchant A only
    assert [(r["amount_fen"], r["fee_fen"], r["kind"], r["status"]) for r in data] == [
        (t.amount_fen, t.fee_fen, t.kind, t.status) for t in expected
    ]
    assert data[0]["occurred_at"] == expected[0].occurred_at
    event = AuditEvent.objects.get(event_type=EventType.TRANSACTIONS_EXPORTED)
    assert (event.after["format"], event.after["rows"], event.after["scope"]) == (
        "parquet",
        len(data),
        "agent_a",
    )


def test_exports_stream_in_small_pieces(money, login, monkeypatch):  # noqa: F811
    # the shared export (platform/exports.py) flushes CSV every FLUSH_ROWS rows, Parquet every ROW_GROUP
    monkeypatch.setattr(shared_exports, "FLUSH_ROWS", 2)
    monkeypatch.setattr(shared_exports, "ROW_GROUP", 2)
    csv_parts = list(login("admin").get("/console/transactions/export/csv/").streaming_content)
    parquet_parts = list(login("admin").get("/console/transactions/export/parquet/").streaming_content)
    total = Transaction.objects.count()
    assert len(csv_parts) >= total // 2
    assert len(parquet_parts) >= total // 2
    table = pq.read_table(io.BytesIO(b"".join(parquet_parts)))
    assert table.num_rows == total
    assert table.num_columns == len(exports.HEADER)
    assert pq.ParquetFile(io.BytesIO(b"".join(parquet_parts))).metadata.num_row_groups >= total // 2


def test_an_unknown_export_format_is_404_and_not_audited(money, login):  # noqa: F811
    client = login("admin")
    with assert_nothing_recorded(Transaction.objects.all()):
        assert client.get("/console/transactions/export/ods/").status_code == 404
    assert not AuditEvent.objects.filter(event_type=EventType.TRANSACTIONS_EXPORTED).exists()
