"""Importing terminals from CSV and Excel: every kind of broken file is reported row by row, and
nothing is written unless the whole file is valid (or the caller chose to skip invalid rows)."""

from __future__ import annotations

import io
from datetime import date, datetime

import openpyxl
import pytest
from django.utils import translation

from posfleet.audit.models import AuditEvent
from posfleet.audit.vocabulary import EventType
from posfleet.fleet.models import Terminal, TerminalModel
from posfleet.fleet.services import NewTerminal, terminal_register
from posfleet.fleet.transfer import import_terminals, validate_file
from posfleet.fleet.transfer import importing as importing_module
from posfleet.platform.context import Actor
from posfleet.platform.errors import PermissionDenied
from posfleet.platform.models import OutboxMessage
from posfleet.testing.personas import SYSTEM


@pytest.fixture(autouse=True)
def english():
    """Messages are asserted in English; the zh-hans catalogue (LANGUAGE_CODE) is tested elsewhere."""
    with translation.override("en"):
        yield


ACTOR = Actor.system("cli:test")
HEADER = "sn,model,sim_iccid,service_expires_on,firmware_version\n"
ICCID = "89860012345678901234"


def write(tmp_path, text: str, *, name: str = "terminals.csv", encoding: str = "utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def write_xlsx(tmp_path, rows, *, name: str = "terminals.xlsx"):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(list(row))
    path = tmp_path / name
    workbook.save(path)
    return path


def state():
    return Terminal.objects.count(), AuditEvent.objects.count(), OutboxMessage.objects.count()


def problems(report):
    return [(e.line, e.column, e.code) for e in report.errors]


def committed_nothing(path, before, **options):
    """Importing ``path`` with --commit writes nothing at all; returns the report."""
    report = import_terminals(actor=ACTOR, path=path, commit=True, **options)
    assert not report.committed
    assert report.written == 0
    assert state() == before
    return report


# -- valid files ---------------------------------------------------------------------------------


def test_valid_csv_is_written_with_one_audit_event_and_batch(world, tmp_path):
    path = write(
        tmp_path,
        HEADER + f"pax-0001,pax-a920,{ICCID},2027-03-31,1.2.0\n"
        " PAX-0002 ,PAX-A920,8986 0012 3456 7890 1235,2027/4/1,\n"
        "PAX-0003,PAX A920,,,\n",
    )
    terminals, events, messages = state()
    report = import_terminals(actor=ACTOR, path=path, commit=True)

    assert report.ok
    assert report.committed
    assert (report.rows, report.valid_rows, report.invalid_rows, report.written, report.chunks) == (
        3,
        3,
        0,
        3,
        1,
    )
    assert report.encoding == "utf-8"
    assert report.fmt == "csv"
    rows = list(
        Terminal.objects.order_by("sn").values_list(
            "sn",
            "status",
            "model__code",
            "sim_iccid",
            "service_expires_on",
            "firmware_version",
            "import_batch",
        )
    )
    assert rows == [
        ("PAX-0001", "in_stock", "pax-a920", ICCID, date(2027, 3, 31), "1.2.0", report.batch),
        ("PAX-0002", "in_stock", "pax-a920", "89860012345678901235", date(2027, 4, 1), "", report.batch),
        ("PAX-0003", "in_stock", "pax-a920", "", None, "", report.batch),
    ]
    assert Terminal.objects.count() == terminals + 3
    new_events = list(AuditEvent.objects.filter(seq__gt=events))
    assert [(e.event_type, e.subject_type, e.subject_id, e.actor_label) for e in new_events] == [
        (EventType.TERMINALS_IMPORTED, "import_batch", report.batch, "cli:test")
    ]
    assert new_events[0].after["count"] == 3
    assert (new_events[0].after["first_sn"], new_events[0].after["last_sn"]) == ("PAX-0001", "PAX-0003")
    assert OutboxMessage.objects.count() == messages + 1


def test_chunks_each_get_one_audit_event_in_one_batch(world, tmp_path):
    lines = "".join(f"CHUNK-{i:04d},pax-a920,,,\n" for i in range(7))
    path = write(tmp_path, HEADER + lines)
    _, events, messages = state()
    report = import_terminals(actor=ACTOR, path=path, commit=True, chunk_size=3)
    assert (report.written, report.chunks) == (7, 3)
    new_events = AuditEvent.objects.filter(seq__gt=events).order_by("seq")
    assert [e.after["count"] for e in new_events] == [3, 3, 1]
    assert {e.subject_id for e in new_events} == {report.batch}
    assert Terminal.objects.filter(import_batch=report.batch).count() == 7
    assert OutboxMessage.objects.count() == messages + 3


def test_valid_xlsx_with_number_and_date_cells(world, tmp_path):
    path = write_xlsx(
        tmp_path,
        [
            ("SN", "Model", "ICCID", "Service expires on", "Firmware"),
            (1170012345, "pax-a920", ICCID, datetime(2027, 5, 6), "2.0"),
            ("XLSX-0002", "pax-a920", None, date(2028, 1, 1), 3),
            (None, None, None, None, None),
        ],
    )
    report = import_terminals(actor=ACTOR, path=path, commit=True)
    assert report.ok
    assert report.committed
    assert report.fmt == "xlsx"
    assert (report.rows, report.blank_rows, report.written) == (2, 1, 2)
    rows = list(
        Terminal.objects.order_by("sn").values_list(
            "sn", "sim_iccid", "service_expires_on", "firmware_version"
        )
    )
    assert rows == [("1170012345", ICCID, date(2027, 5, 6), "2.0"), ("XLSX-0002", "", date(2028, 1, 1), "3")]


def test_gb18030_csv_with_chinese_headers(world, tmp_path):
    text = (
        "序列号,机型,SIM卡号,服务到期日,固件版本\n"
        f"GBK-0001,pax-a920,{ICCID},2027-06-30,正式版1.0\n"
        "GBK-0002,pax-a920,,2027-07-01,测试版\n"
    )
    path = write(tmp_path, text, encoding="gb18030")
    report = import_terminals(actor=ACTOR, path=path, commit=True)
    assert report.encoding == "gb18030"
    assert report.columns == ["sn", "model", "sim_iccid", "service_expires_on", "firmware_version"]
    assert report.ok
    assert report.written == 2
    assert Terminal.objects.get(sn="GBK-0001").firmware_version == "正式版1.0"


def test_utf8_with_bom_and_iccid_alias(world, tmp_path):
    path = write(tmp_path, "\ufeffSN,机型,ICCID,到期日,固件\nBOM-0001,pax-a920,,,\n")
    report = validate_file(path)
    assert report.encoding == "utf-8-sig"
    assert report.ok
    assert report.columns == [
        "sn",
        "model",
        "sim_iccid",
        "service_expires_on",
        "firmware_version",
    ]


def test_semicolon_separated_csv(world, tmp_path):
    path = write(tmp_path, "sn;model\nSEMI-0001;pax-a920\n")
    assert validate_file(path).ok


def test_dry_run_is_the_default_and_writes_nothing(world, tmp_path):
    path = write(tmp_path, HEADER + "DRY-0001,pax-a920,,,\n")
    before = state()
    report = import_terminals(actor=ACTOR, path=path)
    assert report.ok
    assert report.dry_run
    assert not report.committed
    assert state() == before


# -- broken rows ---------------------------------------------------------------------------------


def test_bad_rows_are_reported_per_row_and_nothing_is_written(world, tmp_path):
    long_sn = "L" * 40
    path = write(
        tmp_path,
        HEADER + "GOOD-0001,pax-a920,,,\n"  # line 2: valid
        "AB1,pax-a920,,,\n"  # 3: SN too short
        '"=HYPERLINK(""http://x.test"",""click"")",pax-a920,,,\n'  # 4: formula
        f"{long_sn},pax-a920,,,\n"  # 5: too long
        ",pax-a920,,,\n"  # 6: SN missing
        "BAD-0007,nokia-3310,,,\n"  # 7: unknown model
        "BAD-0008,,,,\n"  # 8: model missing
        "BAD-0009,pax-a920,12345,,\n"  # 9: bad ICCID
        "BAD-0010,pax-a920,8.98600E+18,,\n"  # 10: ICCID mangled by Excel
        "BAD-0011,pax-a920,,2027-02-30,\n"  # 11: no such day
        "BAD-0012,pax-a920,,next year,\n"  # 12: not a date
        "BAD-0013,pax-a920,,1999-12-31,\n"  # 13: implausible year
        f"BAD-0014,pax-a920,,,{'v' * 33}\n"  # 14: firmware too long
        "BAD-0015,pax-a920,,,+cmd|' /C calc'!A0\n"  # 15: formula in firmware
        "BAD-0016,pax-a920,,,,surplus\n"  # 16: cells beyond the header
        "@SUM(1),pax-a920,,,\n",  # 17: formula with @
    )
    before = state()
    report = committed_nothing(path, before)
    assert (report.rows, report.valid_rows, report.invalid_rows) == (16, 1, 15)
    assert problems(report) == [
        (3, "sn", "sn_invalid"),
        (4, "sn", "formula"),
        (5, "sn", "too_long"),
        (6, "sn", "sn_required"),
        (7, "model", "model_unknown"),
        (8, "model", "model_required"),
        (9, "sim_iccid", "iccid_invalid"),
        (10, "sim_iccid", "number_lost_digits"),
        (11, "service_expires_on", "date_invalid"),
        (12, "service_expires_on", "date_invalid"),
        (13, "service_expires_on", "date_invalid"),
        (14, "firmware_version", "too_long"),
        (15, "firmware_version", "formula"),
        (16, "", "extra_cells"),
        (17, "sn", "formula"),
    ]
    by_line = {e.line: e for e in report.errors}
    assert by_line[4].sn == '=HYPERLINK("http://x.test","click")'
    assert by_line[4].message == (
        '“=HYPERLINK("http://x.test","click")” looks like a spreadsheet formula (it starts with “=”). '
        "Formulas are not accepted as values: enter the plain value."
    )
    assert by_line[3].message == "“AB1”: A serial number is 6 to 32 capital letters, digits or dashes."
    assert by_line[5].message == "The value is 40 characters long; at most 32 are allowed."
    assert by_line[7].message == "Unknown terminal model “nokia-3310”. Known model codes: pax-a920."
    assert by_line[11].message == "2027-02-30 is not a day of the calendar."
    assert by_line[12].message == "“next year” is not a date: use YYYY-MM-DD."
    assert by_line[9].message == "“12345”: An ICCID is 19 or 20 digits starting with 89."
    assert report.error_counts["formula"] == 3
    assert not report.file_errors


def test_duplicates_in_the_file_report_both_lines(world, tmp_path):
    path = write(
        tmp_path,
        HEADER + "DUP-0001,pax-a920,,,\nDUP-0002,pax-a920,,,\ndup-0001,pax-a920,,,\nDUP-0003,pax-a920,,,\n",
    )
    report = committed_nothing(path, state())
    assert [(e.line, e.sn, e.code, e.message) for e in report.errors] == [
        (2, "DUP-0001", "duplicate_in_file", "Duplicate SN: it is on line 4 too."),
        (4, "DUP-0001", "duplicate_in_file", "Duplicate SN: it is on line 2 too."),
    ]
    assert (report.valid_rows, report.invalid_rows) == (2, 2)


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 100])
def test_duplicates_are_found_across_chunks(world, tmp_path, chunk_size):
    rows = ["A-000001", "A-000002", "A-000001", "A-000003", "A-000002", "A-000001", "A-000004"]
    path = write(tmp_path, "sn,model\n" + "".join(f"{sn},pax-a920\n" for sn in rows))
    report = validate_file(path, chunk_size=chunk_size)
    assert [(e.line, e.sn, e.message) for e in report.errors] == [
        (2, "A-000001", "Duplicate SN: it is on line 4 too."),
        (3, "A-000002", "Duplicate SN: it is on line 6 too."),
        (4, "A-000001", "Duplicate SN: it is on line 2 too."),
        (6, "A-000002", "Duplicate SN: it is on line 3 too."),
        (7, "A-000001", "Duplicate SN: it is on line 2 too."),
    ]
    assert (report.valid_rows, report.invalid_rows) == (2, 5)


def test_sn_registered_already(world, tmp_path):
    terminal_register(actor=SYSTEM, terminal=NewTerminal(sn="OLD-0001", model_id=world.model.pk))
    path = write(tmp_path, HEADER + "NEW-0001,pax-a920,,,\nold-0001,pax-a920,,,\n")
    report = committed_nothing(path, state())
    assert [(e.line, e.sn, e.code, e.message) for e in report.errors] == [
        (3, "OLD-0001", "sn_exists", "A terminal with SN OLD-0001 is registered already.")
    ]


def test_status_column_of_an_export_only_accepts_in_stock(world, tmp_path):
    path = write(
        tmp_path,
        "sn,tid,status,model,agent\nEXP-0001,,in_stock,pax-a920,\nEXP-0002,10000001,active,pax-a920,AG-A\n",
    )
    report = validate_file(path)
    assert report.ignored_columns == ["tid", "agent"]
    assert problems(report) == [(3, "status", "status_not_importable")]


def test_error_details_are_capped_but_every_error_is_counted(world, tmp_path):
    path = write(tmp_path, "sn,model\n" + "".join(f"BAD-{i:04d},nokia\n" for i in range(20)))
    report = validate_file(path, max_errors=5)
    assert len(report.errors) == 5
    assert report.errors_truncated
    assert report.error_counts == {"model_unknown": 20}
    assert report.invalid_rows == 20


def test_skip_invalid_writes_only_the_valid_rows(world, tmp_path):
    path = write(
        tmp_path,
        HEADER + "SKIP-0001,pax-a920,,,\nSKIP-0002,nokia,,,\nSKIP-0003,pax-a920,,,\nSKIP-0001,pax-a920,,,\n"
        "SKIP-0004,pax-a920,,,\n",
    )
    _terminals, events, _ = state()
    report = import_terminals(actor=ACTOR, path=path, commit=True, skip_invalid=True, chunk_size=2)
    assert report.committed
    assert (report.written, report.skipped, report.chunks) == (2, 3, 1)
    assert problems(report) == [
        (2, "sn", "duplicate_in_file"),
        (3, "model", "model_unknown"),
        (5, "sn", "duplicate_in_file"),
    ]
    assert sorted(Terminal.objects.values_list("sn", flat=True)) == ["SKIP-0003", "SKIP-0004"]
    assert AuditEvent.objects.filter(seq__gt=events, event_type=EventType.TERMINALS_IMPORTED).count() == 1


def test_a_concurrent_insert_rolls_back_every_chunk(world, tmp_path, monkeypatch):
    """An SN registered by someone else between the check and the write: nothing at all is kept."""
    terminal_register(actor=SYSTEM, terminal=NewTerminal(sn="RACE-0005", model_id=world.model.pk))
    path = write(tmp_path, "sn,model\n" + "".join(f"RACE-{i:04d},pax-a920\n" for i in range(1, 8)))
    monkeypatch.setattr(importing_module, "_registered", lambda sns: set())  # the check saw nothing
    before = state()
    report = import_terminals(actor=ACTOR, path=path, commit=True, chunk_size=2)
    assert [e.code for e in report.file_errors] == ["conflict"]
    assert not report.committed
    assert report.batch == ""
    assert state() == before  # chunk RACE-0001..0004 was written, then rolled back with the rest
    assert not Terminal.objects.filter(sn="RACE-0001").exists()


# -- broken files --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"", "empty_file"),
        (b"\n\n", "empty_file"),
        (HEADER.encode(), "no_rows"),
        (b"sn,model,colour\nX-000001,pax-a920,red\n", "unknown_column"),
        (b"sn,sim_iccid\nX-000001,\n", "missing_column"),
        ("sn,model,序列号\nX-000001,pax-a920,X\n".encode(), "duplicate_column"),
        (b"sn,model\ncaf\x80\xff,pax-a920\n", "encoding"),
        ("sn,model\nX-000001,pax-a920\n".encode("utf-16"), "encoding"),
        (b"sn,model\nX-000001\x00,pax-a920\n", "encoding"),
        (b"PK\x03\x04 not really a spreadsheet", "unreadable"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1 old excel", "old_excel"),
    ],
)
def test_broken_files_are_refused_as_a_whole(world, tmp_path, content, code):
    path = tmp_path / "broken.csv"
    path.write_bytes(content)
    report = committed_nothing(path, state(), skip_invalid=True)
    assert [e.code for e in report.file_errors] == [code]
    assert not report.ok


def test_wrong_encoding_gives_one_clear_error(world, tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes(b"sn,model\nX-000001,pax-a920\nCAF\x80\xff-1,pax-a920\n")
    report = validate_file(path)
    assert [(e.code, e.line, e.message) for e in report.file_errors] == [
        (
            "encoding",
            3,
            "The file is neither UTF-8 nor GB18030/GBK text (first unreadable byte on line 3). "
            "Save it from Excel as “CSV UTF-8”.",
        )
    ]
    assert report.rows == 0
    assert report.errors == []


def test_unknown_column_message(world, tmp_path):
    report = validate_file(write(tmp_path, "sn,model,colour\nX-000001,pax-a920,red\n"))
    assert [(e.code, e.line, e.message) for e in report.file_errors] == [
        (
            "unknown_column",
            1,
            "Unknown column “colour” (column 3). The columns are: "
            "sn, model, sim_iccid, service_expires_on, firmware_version.",
        )
    ]


def test_xlsx_formula_and_numbers_that_lost_digits(world, tmp_path):
    path = write_xlsx(
        tmp_path,
        [
            ("sn", "model", "sim_iccid", "service_expires_on"),
            ('=HYPERLINK("http://x.test","x")', "pax-a920", None, None),
            ("XL-000003", "pax-a920", 8.986001234567891e18, None),
            ("XL-000004", "pax-a920", None, 46000),
            (1.5e20, "pax-a920", None, None),
        ],
    )
    report = committed_nothing(path, state())
    assert problems(report) == [
        (2, "sn", "formula"),
        (3, "sim_iccid", "number_lost_digits"),
        (4, "service_expires_on", "date_invalid"),
        (5, "sn", "number_lost_digits"),
    ]


def test_xlsx_file_given_as_csv(world, tmp_path):
    path = write_xlsx(tmp_path, [("sn", "model"), ("X-000001", "pax-a920")], name="really.xlsx")
    report = validate_file(path, "csv")
    assert [(e.code, e.message) for e in report.file_errors] == [
        ("bad_format", "This is an Excel (.xlsx) file, not CSV: import it as xlsx.")
    ]
    assert validate_file(path).ok  # without a format, the content decides


def test_csv_file_given_as_xlsx_and_damaged_xlsx(world, tmp_path):
    csv_path = write(tmp_path, HEADER + "X-000001,pax-a920,,,\n")
    report = validate_file(csv_path, "xlsx")
    assert [e.code for e in report.file_errors] == ["bad_format"]
    damaged = tmp_path / "damaged.xlsx"
    damaged.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    assert [e.code for e in validate_file(damaged).file_errors] == ["unreadable"]


def test_validate_file_accepts_an_uploaded_file_object(world):
    upload = io.BytesIO(b"sn,model\nUP-000001,pax-a920\n")
    upload.name = "upload.csv"
    report = validate_file(upload)
    assert report.ok
    assert report.source == "upload.csv"
    assert not upload.closed


def test_model_codes_and_maker_names_are_both_accepted(world, tmp_path):
    TerminalModel.objects.create(code="sunmi-p2", maker="Sunmi", name="P2", kind="smart")
    path = write(tmp_path, "sn,model\nM-000001,SUNMI-P2\nM-000002,sunmi p2\nM-000003,Sunmi  P2\n")
    assert problems(validate_file(path)) == [(4, "model", "model_unknown")]


# -- who may import ------------------------------------------------------------------------------


def test_warehouse_user_may_import(world, tmp_path, actor_of):
    path = write(tmp_path, HEADER + "WH-000001,pax-a920,,,\n")
    report = import_terminals(actor=actor_of(world.user("warehouse")), path=path, commit=True)
    assert report.committed
    event = AuditEvent.objects.filter(event_type=EventType.TERMINALS_IMPORTED).get()
    assert (event.actor_kind, event.actor_label) == ("user", "warehouse")


@pytest.mark.parametrize("who", ["agent_a", "merchant_a", "reviewer"])
def test_others_may_not_even_dry_run(world, tmp_path, actor_of, who):
    terminal_register(actor=SYSTEM, terminal=NewTerminal(sn="SECRET-01", model_id=world.model.pk))
    path = write(tmp_path, HEADER + "SECRET-01,pax-a920,,,\n")
    before = state()
    with pytest.raises(PermissionDenied):
        import_terminals(actor=actor_of(world.user(who)), path=path)
    with pytest.raises(PermissionDenied):
        import_terminals(actor=actor_of(world.user(who)), path=path, commit=True)
    assert state() == before
