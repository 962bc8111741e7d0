"""`posfleet ingest transactions FILE.csv`: a dry run shows every row's result and writes nothing;
--commit writes (sending the file again is a replay); refused rows make the exit code 1."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from posfleet.audit.models import AuditEvent
from posfleet.billing.models import AccountKind, Journal, Transaction
from posfleet.billing.tests.test_transactions import active_terminal
from posfleet.billing.verify import verify_ledger
from posfleet.testing.money import balance, on_standard_plan
from posfleet.testing.refusals import assert_nothing_recorded

HEADER = (
    "tid,batch_no,trace_no,txn_date,occurred_at,method,entry_mode,amount,kind,status,card,original_trace\n"
)


@pytest.fixture
def shop(world):
    on_standard_plan(world.merchant_a)
    return active_terminal(world, "SN-CSV-0001")


def write(tmp_path, rows: list[str], header: str = HEADER):
    path = tmp_path / "txns.csv"
    path.write_text(header + "".join(f"{r}\n" for r in rows), encoding="utf-8")
    return str(path)


def good_rows(tid: str) -> list[str]:
    return [
        f"{tid},000001,000001,2026-11-03,2026-11-03T10:00:00,credit,insert,100.00,sale,approved,622202******1234,",
        f"{tid},000001,000002,2026-11-03,2026-11-03 10:05:00+08:00,qr,scan,12.3,,,,",
        f"{tid},000001,000003,2026-11-03,2026-11-03T11:00:00,credit,insert,25.00,refund,approved,,000001",
        f"{tid},000001,000004,2026-11-03,2026-11-03T11:30:00,debit,swipe,8.00,sale,declined,,",
    ]


def test_a_dry_run_lists_each_row_and_writes_nothing(shop, tmp_path, capsys):
    before = (Transaction.objects.count(), Journal.objects.count(), AuditEvent.objects.count())
    call_command("ingest", "transactions", write(tmp_path, good_rows(shop.tid)))
    out = capsys.readouterr().out
    tid = shop.tid
    assert f"line 2\t{tid}/000001/000001/2026-11-03\tok\tfee ¥0.60\n" in out
    assert f"line 3\t{tid}/000001/000002/2026-11-03\tok\tfee ¥0.06\n" in out  # 1230 × 0.48 % = 5.904
    assert f"line 4\t{tid}/000001/000003/2026-11-03\tok\tfee ¥0.15\n" in out  # a quarter of 0.60 back
    assert f"line 5\t{tid}/000001/000004/2026-11-03\tok\tfee ¥0.00\n" in out
    assert "checked 4 rows\n" in out
    assert "4 rows: 4 would be ingested (dry run, nothing written), 0 replays" in out
    assert (Transaction.objects.count(), Journal.objects.count(), AuditEvent.objects.count()) == before


def test_commit_writes_and_a_second_send_is_a_replay(world, shop, tmp_path, capsys):
    path = write(tmp_path, good_rows(shop.tid))
    call_command("ingest", "transactions", path, "--commit")
    assert (
        "4 rows: 4 ingested, 0 replays of stored transactions, 0 refused; fees ¥0.66 charged, ¥0.15 returned"
        in (capsys.readouterr().out)
    )
    refund = Transaction.objects.get(kind="refund")
    assert (refund.original.trace_no, refund.amount_fen, refund.fee_fen) == ("000001", 2500, 15)
    assert Transaction.objects.get(trace_no="000001").occurred_at.isoformat() == "2026-11-03T02:00:00+00:00"
    payable = balance(world.merchant_a.organisation_id, AccountKind.SETTLEMENT_PAYABLE)
    assert payable == (10000 - 60) + (1230 - 6) - (2500 - 15)
    call_command("ingest", "transactions", path, "--commit")
    assert "4 rows: 0 ingested, 4 replays" in capsys.readouterr().out
    assert Transaction.objects.count() == 4
    assert balance(world.merchant_a.organisation_id, AccountKind.SETTLEMENT_PAYABLE) == payable
    assert verify_ledger().ok


def test_refused_rows_are_named_and_set_the_exit_code(shop, tmp_path, capsys):
    rows = [
        *good_rows(shop.tid)[:2],
        f"{shop.tid},000001,000005,2026-11-03,2026-11-03T10:00:00,credit,insert,12.345,,,,",
        f"{shop.tid},000001,000006,2026-11-31,2026-11-03T10:00:00,credit,insert,1.00,,,,",
        f"{shop.tid},000001,000007,2026-11-03,yesterday,credit,insert,1.00,,,,",
        "99999999,000001,000008,2026-11-03,2026-11-03T10:00:00,credit,insert,1.00,,,,",
        f"{shop.tid},000001,000009,2026-11-03,2026-11-03T10:00:00,credit,insert,200.00,refund,,,000001",
    ]
    with pytest.raises(CommandError) as refused:
        call_command("ingest", "transactions", write(tmp_path, rows), "--commit")
    assert refused.value.returncode == 1
    assert (
        "5 rows refused (invalid_amount: 1, invalid_key: 1, invalid_time: 1, refund_exceeds_sale: 1"
        in str(refused.value)
    )
    out = capsys.readouterr().out
    assert "line 4\t" in out
    assert "\tREFUSED\tinvalid_amount\t" in out
    assert "line 7\t99999999/000001/000008/2026-11-03\tREFUSED\tunknown_terminal\t" in out
    assert Transaction.objects.count() == 2  # the good ones are written
    assert verify_ledger().ok


def test_an_unusable_file_writes_nothing(shop, tmp_path):
    bad_header = write(tmp_path, good_rows(shop.tid), header="tid,amount\n")
    with assert_nothing_recorded(Transaction.objects.all()), pytest.raises(CommandError) as missing:
        call_command("ingest", "transactions", bad_header, "--commit")
    assert (missing.value.returncode, "missing columns: batch_no" in str(missing.value)) == (2, True)
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes((HEADER + good_rows(shop.tid)[0] + ",备注\n").encode("gb18030"))
    with assert_nothing_recorded(Transaction.objects.all()), pytest.raises(CommandError) as encoding:
        call_command("ingest", "transactions", str(gbk), "--commit")
    assert encoding.value.returncode == 2
    with assert_nothing_recorded(Transaction.objects.all()), pytest.raises(CommandError) as absent:
        call_command("ingest", "transactions", str(tmp_path / "nope.csv"), "--commit")
    assert absent.value.returncode == 2
    assert Transaction.objects.count() == 0
