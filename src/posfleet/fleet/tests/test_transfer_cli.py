"""`posfleet import terminals` and `posfleet export terminals`: dry run by default, exit codes,
the per-row report, progress lines when not on a terminal."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest
from django.core.management import call_command, get_commands
from django.core.management.base import CommandError
from django.utils import translation

from posfleet.audit.models import AuditEvent
from posfleet.audit.vocabulary import EventType
from posfleet.fleet.models import Terminal
from posfleet.fleet.states import Status
from posfleet.fleet.transfer.cli import CliProgress
from posfleet.fleet.transfer.report import ProgressEvent
from posfleet.platform.models import OutboxMessage
from posfleet.testing.personas import make_terminal
from posfleet.testing.refusals import assert_nothing_recorded


@pytest.fixture(autouse=True)
def english():
    """Messages are asserted in English; the zh-hans catalogue (LANGUAGE_CODE) is tested elsewhere."""
    with translation.override("en"):
        yield


def run(name: str, *args: str) -> tuple[int, str, str, str]:
    """(exit code, stdout, stderr, error message) of ``posfleet <name> <args>``."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(name, *args, stdout=out, stderr=err)
    except CommandError as exc:
        return exc.returncode, out.getvalue(), err.getvalue(), str(exc)
    return 0, out.getvalue(), err.getvalue(), ""


def state():
    return Terminal.objects.count(), AuditEvent.objects.count(), OutboxMessage.objects.count()


@pytest.fixture
def files(tmp_path):
    def make(name: str, text: str, encoding: str = "utf-8") -> str:
        path = tmp_path / name
        path.write_bytes(text.encode(encoding))
        return str(path)

    return make


def test_command_names_resolve_to_posfleet():
    commands = get_commands()
    assert (commands["import"], commands["export"]) == ("posfleet.fleet", "posfleet.fleet")


def test_dry_run_is_the_default(world, files):
    path = files("ok.csv", "sn,model\nCLI-0001,pax-a920\nCLI-0002,pax-a920\n")
    before = state()
    code, out, _err, _ = run("import", "terminals", path)
    assert code == 0
    assert out.splitlines() == [
        "validated 2 rows",
        f"{path} (csv, utf-8): 2 rows, 2 valid, 0 invalid",
        "Dry run: all 2 rows are valid; nothing was written. Run again with --commit to import them.",
    ]
    assert state() == before


def test_dry_run_with_errors_exits_1_and_lists_each_row(world, files):
    path = files("bad.csv", "sn,model\nCLI-0001,pax-a920\nCLI-0002,nokia\n=1+1,pax-a920\n")
    before = state()
    code, out, _err, message = run("import", "terminals", path)
    assert code == 1
    assert message == "2 of 3 rows are invalid; nothing was written"
    lines = out.splitlines()
    assert lines[lines.index("line\tsn\tcolumn\tcode\tproblem") + 1 :] == [
        "3\tCLI-0002\tmodel\tmodel_unknown\tUnknown terminal model “nokia”. Known model codes: pax-a920.",
        "4\t=1+1\tsn\tformula\t“=1+1” looks like a spreadsheet formula (it starts with “=”). "
        "Formulas are not accepted as values: enter the plain value.",
        "errors by kind: formula: 1, model_unknown: 1",
    ]
    assert state() == before


def test_commit_writes_a_valid_file(world, files):
    path = files("ok.csv", "序列号,机型\nCLI-0001,pax-a920\nCLI-0002,pax-a920\n", encoding="gb18030")
    terminals, events, _ = state()
    code, out, _err, _ = run("import", "terminals", path, "--commit")
    assert code == 0
    assert "written 2 rows" in out.splitlines()
    batch = Terminal.objects.get(sn="CLI-0001").import_batch
    assert f"Imported 2 terminals into stock in batch {batch} (1 chunk, one audit event each)." in out
    assert Terminal.objects.count() == terminals + 2
    event = AuditEvent.objects.get(seq__gt=events)
    assert (event.event_type, event.actor_kind) == (EventType.TERMINALS_IMPORTED, "system")
    assert event.actor_label.startswith("cli:")


def test_commit_refuses_a_file_with_invalid_rows(world, files):
    path = files("bad.csv", "sn,model\nCLI-0001,pax-a920\nCLI-0002,nokia\n")
    before = state()
    code, _out, _err, message = run("import", "terminals", path, "--commit")
    assert (code, message) == (
        1,
        "1 of 2 rows are invalid; nothing was written; fix them, or pass --skip-invalid "
        "to import only the 1 valid rows",
    )
    assert state() == before


def test_skip_invalid_writes_the_valid_rows_and_exits_3(world, files):
    path = files("bad.csv", "sn,model\nCLI-0001,pax-a920\nCLI-0002,nokia\nCLI-0003,pax-a920\n")
    code, out, _err, message = run("import", "terminals", path, "--commit", "--skip-invalid")
    assert (code, message) == (3, "1 invalid rows were skipped (listed above)")
    assert "3\tCLI-0002\tmodel\tmodel_unknown" in out
    assert sorted(Terminal.objects.values_list("sn", flat=True)) == ["CLI-0001", "CLI-0003"]


def test_an_unusable_file_exits_2(world, files):
    path = files("latin1.csv", "sn,model\nCAFÉ-001,pax-a920\n", encoding="latin-1")
    before = state()
    code, out, _err, message = run("import", "terminals", path, "--commit", "--skip-invalid")
    assert (code, message) == (2, "the file cannot be imported; nothing was written")
    assert "ERROR [encoding] line 2: The file is neither UTF-8 nor GB18030/GBK text" in out
    assert state() == before


def test_a_missing_file_exits_2(world, tmp_path):
    with assert_nothing_recorded(Terminal.objects.all()):
        code, out, _err, _ = run("import", "terminals", str(tmp_path / "nope.csv"), "--commit")
    assert code == 2
    assert "ERROR [unreadable] The file cannot be opened" in out


def test_user_option_checks_permission(world, files):
    path = files("ok.csv", "sn,model\nCLI-0001,pax-a920\n")
    before = state()
    assert run("import", "terminals", path, "--commit", "--user", "agent_a")[::3] == (
        2,
        "agent_a may not import terminals",
    )
    assert run("import", "terminals", path, "--user", "nobody")[::3] == (2, "no active user 'nobody'")
    assert state() == before
    code, *_ = run("import", "terminals", path, "--commit", "--user", "warehouse")
    assert code == 0
    event = AuditEvent.objects.filter(event_type=EventType.TERMINALS_IMPORTED).get()
    assert (event.actor_kind, event.actor_label) == ("user", "warehouse")


def test_xlsx_import(world, tmp_path):
    workbook = openpyxl.Workbook()
    workbook.active.append(["SN", "MODEL"])
    workbook.active.append(["XL-CLI-01", "pax-a920"])
    path = tmp_path / "t.xlsx"
    workbook.save(path)
    code, out, *_ = run("import", "terminals", str(path), "--commit")
    assert code == 0
    assert "(xlsx): 1 rows, 1 valid, 0 invalid" in out
    assert Terminal.objects.filter(sn="XL-CLI-01").exists()


def test_export_to_a_file_with_filters(world, tmp_path):
    make_terminal(world, "EX-ACTIVE1", Status.ACTIVE)
    make_terminal(world, "EX-SUSP-01", Status.SUSPENDED)
    make_terminal(world, "EX-STOCK-1", Status.IN_STOCK)
    target = tmp_path / "out.csv"
    code, out, _err, _ = run(
        "export", "terminals", "--output", str(target), "--status", "active,suspended", "--agent", "AG-A"
    )
    assert code == 0
    assert f"Exported 2 terminals to {target} (csv)." in out
    rows = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8-sig"))))
    assert [r[:3] for r in rows[1:]] == [
        ["EX-ACTIVE1", rows[1][1], "active"],
        ["EX-SUSP-01", rows[2][1], "suspended"],
    ]
    event = AuditEvent.objects.filter(event_type=EventType.TERMINALS_EXPORTED).get()
    assert event.after["filters"] == {"statuses": ["active", "suspended"], "agent": "AG-A"}
    assert not (tmp_path / "out.csv.part").exists()


def test_export_to_stdout_and_xlsx(world, tmp_path):
    make_terminal(world, "EX-STOCK-1", Status.IN_STOCK)
    code, out, err, _ = run("export", "terminals")
    assert code == 0
    assert out.splitlines()[1].startswith("EX-STOCK-1,,in_stock,pax-a920")
    assert "Exported 1 terminals to stdout (csv)." in err
    target = tmp_path / "out.xlsx"
    assert run("export", "terminals", "-o", str(target))[0] == 0
    sheet = openpyxl.load_workbook(target, read_only=True).worksheets[0]
    assert [row[0] for row in sheet.iter_rows(values_only=True)] == ["sn", "EX-STOCK-1"]


def test_export_as_a_user_sees_only_their_scope(world, tmp_path):
    make_terminal(world, "EX-A-00001", Status.ACTIVE)
    make_terminal(world, "EX-B-00001", Status.ACTIVE, merchant=world.merchant_b)
    target = tmp_path / "b.csv"
    assert run("export", "terminals", "-o", str(target), "--user", "agent_b")[0] == 0
    rows = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8-sig"))))
    assert [r[0] for r in rows[1:]] == ["EX-B-00001"]


def test_export_rejects_unknown_status(world):
    with assert_nothing_recorded():  # not even the export's audit event
        code, *_rest, message = run("export", "terminals", "--status", "lost")
    assert code == 2
    assert message.startswith("unknown status lost")


def test_plain_progress_lines():
    stream = io.StringIO()
    with CliProgress(stream, tty=False, every=2) as progress:
        for done in (1, 2, 3, 4, 5):
            progress(ProgressEvent("validate", done, None, None))
        progress(ProgressEvent("validate", 5, 5, 1.0))
        progress(ProgressEvent("write", 5, 5, 1.0))
    assert stream.getvalue().splitlines() == [
        "validated 2 rows…",
        "validated 4 rows…",
        "validated 5 rows",
        "written 5 rows",
    ]
