"""Exporting terminals: streaming, in the reader's scope, formula cells neutralised, audited once;
and an export imports back into an empty fleet as the same in-stock terminals."""

from __future__ import annotations

import csv
import io
from datetime import date

import openpyxl
import pytest
from django.utils import translation

from posfleet.audit.models import AuditEvent
from posfleet.audit.vocabulary import EventType
from posfleet.fleet.models import Terminal, TerminalKey
from posfleet.fleet.selectors import TerminalFilters
from posfleet.fleet.services import NewTerminal, terminal_register
from posfleet.fleet.states import Status
from posfleet.fleet.transfer import EXPORT_COLUMNS, export_terminals, import_terminals, neutralise, stream_csv
from posfleet.platform.context import Actor
from posfleet.platform.errors import PermissionDenied
from posfleet.testing.personas import SYSTEM, make_terminal
from posfleet.testing.refusals import assert_nothing_recorded


@pytest.fixture(autouse=True)
def english():
    """Messages are asserted in English; the zh-hans catalogue (LANGUAGE_CODE) is tested elsewhere."""
    with translation.override("en"):
        yield


ACTOR = Actor.system("cli:test")
ICCID = "89860012345678901234"


def export_csv(actor=ACTOR, user=None, filters=None):
    out = io.BytesIO()
    count = export_terminals(
        actor=actor, user_or_none=user, filters=filters or TerminalFilters(), fmt="csv", out=out
    )
    data = out.getvalue()
    assert data.startswith(b"\xef\xbb\xbf")  # BOM: Excel opens the UTF-8 correctly
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == list(EXPORT_COLUMNS)
    assert len(rows) - 1 == count
    return rows[1:], data


def register(world, sn, **fields):
    terminal_register(actor=SYSTEM, terminal=NewTerminal(sn=sn, model_id=world.model.pk, **fields))


def last_export_event():
    return AuditEvent.objects.filter(event_type=EventType.TERMINALS_EXPORTED).order_by("-seq").first()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+2", "'=1+2"),
        ("+cmd", "'+cmd"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("1.2.3", "1.2.3"),
        ("", ""),
        ("a=b", "a=b"),
    ],
)
def test_neutralise(value, expected):
    assert neutralise(value) == expected


def test_csv_export_neutralises_formula_cells_and_is_audited(world):
    register(world, "FORMULA-01", firmware_version='=HYPERLINK("http://x.test","x")', sim_iccid=ICCID)
    register(world, "PLAIN-0001", firmware_version="1.0.0", service_expires_on=date(2027, 1, 31))
    events = AuditEvent.objects.count()
    rows, _data = export_csv(filters=TerminalFilters())
    assert rows == [
        [
            "FORMULA-01",
            "",
            "in_stock",
            "pax-a920",
            "",
            "",
            "",
            ICCID,
            "",
            '\'=HYPERLINK("http://x.test","x")',
            "",
            "",
        ],
        ["PLAIN-0001", "", "in_stock", "pax-a920", "", "", "", "", "2027-01-31", "1.0.0", "", ""],
    ]
    new = list(AuditEvent.objects.filter(seq__gt=events))
    assert [(e.event_type, e.subject_type, e.outcome, e.actor_label) for e in new] == [
        (EventType.TERMINALS_EXPORTED, "export", "success", "cli:test")
    ]
    assert new[0].after == {"format": "csv", "rows": 2, "filters": {}, "scope": "all"}
    assert new[0].subject_id.startswith("EXP-")


def test_xlsx_export_neutralises_and_keeps_dates(world):
    register(world, "FORMULA-02", firmware_version="=1+2", service_expires_on=date(2027, 2, 1))
    out = io.BytesIO()
    count = export_terminals(actor=ACTOR, user_or_none=None, filters=TerminalFilters(), fmt="xlsx", out=out)
    assert count == 1
    sheet = openpyxl.load_workbook(io.BytesIO(out.getvalue()), read_only=True).worksheets[0]
    header, row = list(sheet.iter_rows(values_only=True))
    assert header == EXPORT_COLUMNS
    data = dict(zip(header, row + (None,) * (len(header) - len(row)), strict=True))
    assert data["firmware_version"] == "'=1+2"  # text, not a formula
    assert data["service_expires_on"].date() == date(2027, 2, 1)
    assert last_export_event().after["format"] == "xlsx"


def test_export_of_bound_terminals_has_their_holders(world):
    terminal = make_terminal(world, "ACTIVE-001", Status.ACTIVE)
    rows, _ = export_csv()
    (row,) = rows
    data = dict(zip(EXPORT_COLUMNS, row, strict=True))
    assert data["tid"] == terminal.tid
    assert len(terminal.tid) == 8
    assert (data["status"], data["agent"], data["merchant"]) == ("active", "AG-A", "100000000000001")
    assert data["status_changed_at"].endswith("+08:00")  # local time, ISO 8601 with offset


def test_agent_b_cannot_export_agent_a_terminals(world, actor_of):
    make_terminal(world, "A-TERM-001", Status.ALLOCATED, agent=world.agent_a)
    make_terminal(world, "A1-TERM-01", Status.ACTIVE, merchant=world.merchant_a1)
    make_terminal(world, "B-TERM-001", Status.ACTIVE, merchant=world.merchant_b)
    register(world, "STOCK-0001")

    agent_b = world.user("agent_b")
    rows, _ = export_csv(actor=actor_of(agent_b), user=agent_b)
    assert [r[0] for r in rows] == ["B-TERM-001"]
    assert last_export_event().after["scope"] == "agent_b"

    agent_a = world.user("agent_a")  # sees its sub-agent's terminals too
    rows, _ = export_csv(actor=actor_of(agent_a), user=agent_a)
    assert [r[0] for r in rows] == ["A-TERM-001", "A1-TERM-01"]

    # Asking for agent A's terminals by filter does not widen agent B's scope.
    rows, _ = export_csv(actor=actor_of(agent_b), user=agent_b, filters=TerminalFilters(agent="AG-A"))
    assert rows == []

    merchant_b = world.user("merchant_b")
    rows, _ = export_csv(actor=actor_of(merchant_b), user=merchant_b)
    assert [r[0] for r in rows] == ["B-TERM-001"]

    admin = world.user("admin")
    rows, _ = export_csv(actor=actor_of(admin), user=admin)
    assert len(rows) == 4


def test_a_user_cannot_export_in_someone_elses_scope(world, actor_of):
    with assert_nothing_recorded(), pytest.raises(PermissionDenied):
        export_terminals(
            actor=actor_of(world.user("agent_b")),
            user_or_none=world.user("admin"),
            filters=TerminalFilters(),
            fmt="csv",
            out=io.BytesIO(),
        )


def test_filters(world):
    make_terminal(world, "F-ACTIVE-1", Status.ACTIVE)
    make_terminal(world, "F-SUSP-001", Status.SUSPENDED)
    make_terminal(world, "F-B-00001", Status.ACTIVE, merchant=world.merchant_b)
    register(world, "F-STOCK-01", service_expires_on=date(2027, 6, 1))
    cases = {
        TerminalFilters(statuses=("active",)): ["F-ACTIVE-1", "F-B-00001"],
        TerminalFilters(statuses=("active", "suspended"), agent="AG-A"): ["F-ACTIVE-1", "F-SUSP-001"],
        TerminalFilters(merchant="100000000000002"): ["F-B-00001"],
        TerminalFilters(q="f-susp"): ["F-SUSP-001"],
        TerminalFilters(q="susp"): ["F-SUSP-001"],  # three characters or more: anywhere in an SN or TID
        TerminalFilters(q="su"): [],  # one or two: the start only
        TerminalFilters(model="pax-a920", sim_expires_from=date(2027, 1, 1)): ["F-STOCK-01"],
        TerminalFilters(sim_expires_to=date(2026, 1, 1)): [],
    }
    for filters, expected in cases.items():
        rows, _ = export_csv(filters=filters)
        assert [r[0] for r in rows] == expected, filters


def test_stream_csv_for_a_streaming_response(world, actor_of):
    for i in range(3):
        register(world, f"STREAM-{i:03d}")
    admin = world.user("admin")
    body = b"".join(stream_csv(actor=actor_of(admin), user_or_none=admin, filters=TerminalFilters()))
    assert body.decode("utf-8-sig").count("\r\n") == 4
    event = last_export_event()
    assert (event.outcome, event.after["rows"], event.actor_label) == ("success", 3, "admin")


def test_a_stream_closed_early_is_audited_as_aborted(world, actor_of):
    register(world, "STREAM-001")
    admin = world.user("admin")
    stream = stream_csv(actor=actor_of(admin), user_or_none=admin, filters=TerminalFilters())
    next(stream)  # the header went out, then the client went away
    stream.close()
    event = last_export_event()
    assert (event.outcome, event.after["rows"]) == ("aborted", 0)


def test_stream_checks_permission_before_the_first_byte(world, actor_of):
    with assert_nothing_recorded(), pytest.raises(PermissionDenied):
        stream_csv(
            actor=actor_of(world.user("agent_a")),
            user_or_none=world.user("agent_b"),
            filters=TerminalFilters(),
        )


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_round_trip_into_an_empty_fleet(world, tmp_path, fmt):
    """export -> import into an empty fleet gives the same rows for the in-stock terminals; the
    others are refused by name (the import registers devices into stock)."""
    register(world, "RT-0001", sim_iccid=ICCID, service_expires_on=date(2027, 3, 1), firmware_version="V2.1")
    register(world, "RT-0002", firmware_version="正式版")
    register(world, "RT-0003")
    make_terminal(world, "RT-ACTIVE", Status.ACTIVE)
    make_terminal(world, "RT-DEREG", Status.DEREGISTERED)
    fields = ("sn", "model__code", "sim_iccid", "service_expires_on", "firmware_version", "status")
    in_stock = list(Terminal.objects.filter(status="in_stock").order_by("sn").values_list(*fields))

    path = tmp_path / f"export.{fmt}"
    with open(path, "wb") as out:
        assert (
            export_terminals(actor=ACTOR, user_or_none=None, filters=TerminalFilters(), fmt=fmt, out=out) == 5
        )
    TerminalKey.objects.all().delete()  # the keys are kept as evidence (PROTECT); an empty fleet has none
    Terminal.objects.all().delete()

    report = import_terminals(actor=ACTOR, path=path, commit=True, skip_invalid=True)
    assert report.committed
    assert report.ignored_columns == [
        "tid",
        "agent",
        "merchant",
        "store",
        "status_reason",
        "status_changed_at",
    ]
    assert (report.written, report.skipped) == (3, 2)
    assert [(e.line, e.sn, e.code) for e in report.errors] == [
        (5, "RT-ACTIVE", "status_not_importable"),
        (6, "RT-DEREG", "status_not_importable"),
    ]
    assert list(Terminal.objects.order_by("sn").values_list(*fields)) == in_stock
