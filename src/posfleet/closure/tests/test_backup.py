"""The merchant's data backup: what the bundle holds (CSV and Parquet equal to each other and to the
database, to the fen), the manifest and its signature, tampering found, one backup per closure case,
who may make and read one (others: 404, nothing recorded), and the end of retention (crypto-shredding
of the personal data of merchants closed long ago, their transactions kept).

``october`` (billing/tests/test_statements.py) gives merchant A a real month: transactions of
2026-09-30 to 2026-11-02 ingested, a signed contract with its deposit and service fee, two settlements.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import time
import zipfile
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq
import pytest
import time_machine
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Count, Sum

from posfleet.audit.models import AuditEvent
from posfleet.audit.vocabulary import EventType
from posfleet.billing.models import ServiceContract, SettlementBatch, Transaction
from posfleet.billing.tests.test_statements import build_october
from posfleet.closure import backup as backups
from posfleet.closure.backup import backup_create, backup_download, backup_verify
from posfleet.closure.backup_signing import public_key_pem, signing_key
from posfleet.closure.models import ClosureCase, DataBackup
from posfleet.closure.retention import retention_sweep
from posfleet.fleet.services import terminal_transition
from posfleet.fleet.states import Status
from posfleet.parties.services import merchant_close
from posfleet.platform import keyring
from posfleet.platform.context import Actor
from posfleet.platform.errors import NotFound, PermissionDenied
from posfleet.platform.exports import BOM
from posfleet.platform.keyring import KeyShredded
from posfleet.testing.personas import SYSTEM, make_terminal
from posfleet.testing.refusals import assert_nothing_recorded

SH = ZoneInfo("Asia/Shanghai")
JOB = Actor.job("test-backup")
TABLE_FILES = [
    f"{t}.{ext}" for t in ("transactions", "settlements", "contracts", "audit") for ext in ("csv", "parquet")
]


@pytest.fixture
def backup_dir(settings, tmp_path):
    settings.POSFLEET_CLOSURE = {**settings.POSFLEET_CLOSURE, "BACKUP_DIR": tmp_path / "backups"}
    return tmp_path / "backups"


@pytest.fixture
def quick_statements(monkeypatch):
    """Statements as a few bytes instead of WeasyPrint's PDF (tests that are not about the PDF)."""
    monkeypatch.setattr(
        backups, "statement_pdf", lambda merchant, month: f"%PDF {merchant.mid} {month}".encode()
    )


@pytest.fixture
def october(world):
    return build_october(world)


def members(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as bundle:
        return {name: bundle.read(name) for name in bundle.namelist()}


def csv_rows(data: bytes) -> list[dict[str, str]]:
    assert data.startswith(BOM)
    return list(csv.DictReader(io.StringIO(data[len(BOM) :].decode())))


def parquet_rows(data: bytes) -> list[dict]:
    return pq.read_table(io.BytesIO(data)).to_pylist()


def plain(value) -> str:
    """A Parquet value as its CSV cell reads (formula-looking text neutralised, times local)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(SH).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and value.startswith(("=", "+", "-", "@", "\t", "\r")):
        return "'" + value
    return str(value)


def same_rows(csv_data: bytes, parquet_data: bytes) -> list[dict[str, str]]:
    """The CSV's rows, after checking the Parquet file holds the same rows, column for column."""
    from_csv = csv_rows(csv_data)
    from_parquet = [{k: plain(v) for k, v in row.items()} for row in parquet_rows(parquet_data)]
    assert from_csv == from_parquet
    return from_csv


def backup_events() -> list[str]:
    return list(
        AuditEvent.objects.filter(subject_type="data_backup")
        .order_by("seq")
        .values_list("event_type", flat=True)
    )


def make_case(merchant, number: str = "CL-TEST-0001") -> ClosureCase:
    at = datetime(2026, 11, 20, 10, tzinfo=SH)
    return ClosureCase.objects.create(
        number=number,
        merchant=merchant,
        reason="shop_closed",
        requested_at=at,
        review_due_at=at + timedelta(days=7),
        quote_digest="0" * 64,
    )


# -- the bundle ---------------------------------------------------------------------------------------


@pytest.mark.pdf
def test_the_bundle_holds_the_merchants_records_equal_in_csv_and_parquet_to_the_fen(
    world, october, backup_dir, actor_of
):
    merchant = world.merchant_a
    seen: list = []
    backup = backup_create(
        actor=actor_of(world.user("merchant_a")), merchant_id=merchant.pk, progress=seen.append
    )

    path = backup_dir / backup.path
    assert path.is_file()
    assert path.parent == backup_dir / merchant.mid
    files = members(path)
    statements = ["statements/2026-09.pdf", "statements/2026-10.pdf", "statements/2026-11.pdf"]
    assert sorted(files) == sorted(["README.txt", *TABLE_FILES, *statements, "manifest.json", "manifest.sig"])
    assert all(files[name].startswith(b"%PDF") for name in statements)

    # Transactions: every one of the merchant's, nobody else's, amounts and fees to the fen.
    txns = same_rows(files["transactions.csv"], files["transactions.parquet"])
    db = Transaction.objects.filter(merchant=merchant).order_by("id")
    assert [int(r["id"]) for r in txns] == list(db.values_list("id", flat=True))
    assert len(txns) == 9
    assert {r["merchant_mid"] for r in txns} == {merchant.mid}
    sums = db.aggregate(amount=Sum("amount_fen"), fee=Sum("fee_fen"))
    assert sum(int(r["amount_fen"]) for r in txns) == sums["amount"] == 715500
    assert sum(int(r["fee_fen"]) for r in txns) == sums["fee"]
    for row, txn in zip(txns, db, strict=True):
        assert (row["kind"], row["status"], int(row["amount_fen"]), int(row["fee_fen"])) == (
            txn.kind,
            txn.status,
            txn.amount_fen,
            txn.fee_fen,
        )
    paid = [r for r in txns if r["settlement_batch_id"]]
    assert len(paid) == 6  # not the declined one, nor 10-31 and 11-02, which no run has paid yet

    # Settlements: each batch's figures, and paid = gross − refunds − fees − deductions.
    batches = same_rows(files["settlements.csv"], files["settlements.parquet"])
    db_batches = SettlementBatch.objects.filter(merchant=merchant).order_by("business_date")
    assert [r["business_date"] for r in batches] == ["2026-10-05", "2026-10-06"]
    for row, batch in zip(batches, db_batches, strict=True):
        gross, refunds, fees, deducted, out = (
            int(row[k]) for k in ("gross_fen", "refunds_fen", "fees_fen", "deductions_fen", "paid_fen")
        )
        assert (gross, refunds, fees, deducted, out) == (
            batch.gross_fen,
            batch.refunds_fen,
            batch.fees_fen,
            batch.service_fees_fen,
            batch.payout_fen,
        )
        assert out == gross - refunds - fees - deducted
    assert int(batches[0]["deductions_fen"]) == 9900  # the annual service fee, kept back on 10-05

    contracts = same_rows(files["contracts.csv"], files["contracts.parquet"])
    contract = ServiceContract.objects.get(merchant=merchant)
    assert [
        (int(r["id"]), r["terminal_sn"], int(r["deposit_fen"]), int(r["annual_fee_fen"])) for r in contracts
    ] == [(contract.pk, "SN-STMT-0001", 29900, 9900)]

    # The audit trail: the merchant's own events and its terminal's while it was the merchant's.
    trail = same_rows(files["audit.csv"], files["audit.parquet"])
    assert [int(r["seq"]) for r in trail] == sorted(int(r["seq"]) for r in trail)
    assert {(r["subject_type"], r["subject_id"]) for r in trail} == {
        ("merchant", merchant.mid),
        ("terminal", "SN-STMT-0001"),
    }
    assert "merchant.created" in [r["event_type"] for r in trail]
    for row in trail:
        if row["subject_type"] == "terminal":
            assert merchant.mid in (
                json.loads(row["before"]).get("merchant"),
                json.loads(row["after"]).get("merchant"),
            )

    # No personal KYC data: the shop's name, never the legal name or contacts.
    text = b"".join(files[name] for name in files if not name.endswith((".pdf", ".parquet"))).decode()
    assert "Shop A Ltd" not in text

    # The manifest: every file but itself and its signature, with its size, rows and SHA-256.
    manifest = json.loads(files["manifest.json"])
    assert manifest["format"] == "posfleet-data-backup"
    assert manifest["format_version"] == 1
    assert manifest["merchant"] == {"mid": merchant.mid, "name": "Shop A"}
    assert manifest["signature"]["key_id"] == signing_key().key_id == backup.key_id
    listed = {f["name"]: f for f in manifest["files"]}
    assert sorted(listed) == sorted(set(files) - {"manifest.json", "manifest.sig"})
    for name, entry in listed.items():
        assert entry["bytes"] == len(files[name])
        assert entry["sha256"] == hashlib.sha256(files[name]).hexdigest()
    assert listed["transactions.csv"]["rows"] == listed["transactions.parquet"]["rows"] == 9
    assert listed["settlements.parquet"]["rows"] == 2
    assert listed["statements/2026-10.pdf"]["rows"] is None

    # The signature: Ed25519 over the manifest's exact bytes, checkable with the published key alone.
    public = load_pem_public_key(public_key_pem().encode())
    public.verify(base64.b64decode(files["manifest.sig"]), files["manifest.json"])  # raises if not
    assert backup_verify(path).ok

    # The row and its one audit event.
    assert backup.size_bytes == path.stat().st_size
    assert backup.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert backup.manifest_sha256 == hashlib.sha256(files["manifest.json"]).hexdigest()
    assert backup.signature == files["manifest.sig"].decode()
    assert backup.created_by_label == "merchant_a"
    assert backup_events() == [EventType.DATA_BACKUP_CREATED]
    event = AuditEvent.objects.get(subject_type="data_backup")
    assert event.subject_id == str(backup.pk)
    assert event.after["sha256"] == backup.sha256

    # Progress: reported per part, ending at the total.
    assert seen
    assert seen[-1].done == seen[-1].total == 9 + 2 + 1 + len(trail) + 3


def test_a_merchant_with_nothing_yet_gets_empty_tables_with_their_headers(
    world, backup_dir, quick_statements
):
    backup = backup_create(actor=JOB, merchant_id=world.merchant_b.pk)
    files = members(backup_dir / backup.path)
    assert csv_rows(files["transactions.csv"]) == []
    assert parquet_rows(files["transactions.parquet"]) == []
    assert files["transactions.csv"].startswith(BOM + b"id,occurred_at,txn_date,merchant_mid")
    assert not [name for name in files if name.startswith("statements/")]
    assert backup_verify(backup_dir / backup.path).ok


# -- tampering ----------------------------------------------------------------------------------------


def rewrite(source, target, change) -> None:
    """Copy a zip, letting ``change(name, data)`` return new bytes for a member (or None to drop it)."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        for info in old.infolist():
            data = change(info.filename, old.read(info.filename))
            if data is not None:
                new.writestr(info.filename, data)


def flipped(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def test_changing_any_byte_of_any_file_or_of_the_manifest_is_found(
    world, october, backup_dir, quick_statements, tmp_path
):
    backup = backup_create(actor=JOB, merchant_id=world.merchant_a.pk)
    path = backup_dir / backup.path
    assert backup_verify(path).ok
    files = members(path)

    for name, data in files.items():
        for at in sorted({0, len(data) // 2, len(data) - 1}):
            forged = tmp_path / "forged.zip"
            rewrite(path, forged, lambda n, d, name=name, at=at: flipped(d, at) if n == name else d)
            result = backup_verify(forged)
            assert not result.ok, (name, at)
            if name in ("manifest.json", "manifest.sig"):
                assert not result.signature_valid
            else:
                assert result.signature_valid
                assert result.problems == (f"changed: {name} (size or SHA-256 differs from the manifest)",)

    # A file removed, a file added.
    forged = tmp_path / "forged.zip"
    rewrite(path, forged, lambda n, d: None if n == "contracts.csv" else d)
    assert backup_verify(forged).problems == ("missing: contracts.csv",)
    with zipfile.ZipFile(forged, "a") as bundle:
        bundle.writestr("contracts.csv", files["contracts.csv"])
        bundle.writestr("extra.csv", b"id\r\n1\r\n")
    assert backup_verify(forged).problems == ("not in the manifest: extra.csv",)

    # A byte of the zip itself in the middle of any member's stored data (not a container byte such as
    # a time stamp or deflate's padding, which change no file): damaged or changed, never "ok".
    raw = path.read_bytes()
    with zipfile.ZipFile(path) as bundle:
        infos = bundle.infolist()
    for info in infos:
        start = info.header_offset
        name_len = int.from_bytes(raw[start + 26 : start + 28], "little")
        extra_len = int.from_bytes(raw[start + 28 : start + 30], "little")
        data_at = start + 30 + name_len + extra_len
        forged.write_bytes(flipped(raw, data_at + info.compress_size // 2))
        assert not backup_verify(forged).ok, info.filename

    forged.write_bytes(b"not a zip at all")
    assert backup_verify(forged).problems == ("not a readable zip file (BadZipFile)",)


def test_a_bundle_signed_with_another_key_says_so(world, backup_dir, quick_statements, settings):
    backup = backup_create(actor=JOB, merchant_id=world.merchant_b.pk)
    signed_by = backup.key_id
    settings.POSFLEET_BACKUP_SIGNING_KEY = base64.b64encode(b"\x07" * 32).decode()
    result = backup_verify(backup_dir / backup.path)
    assert not result.ok
    assert not result.signature_valid
    assert result.problems == (f"signed by key {signed_by}, not by the current key {signing_key().key_id}",)


def test_the_signing_key_is_derived_from_the_secret_key_when_not_configured(settings):
    settings.POSFLEET_BACKUP_SIGNING_KEY = ""
    first = signing_key()
    settings.SECRET_KEY = settings.SECRET_KEY + "-other"
    assert signing_key().key_id != first.key_id
    settings.SECRET_KEY = settings.SECRET_KEY.removesuffix("-other")
    assert signing_key().key_id == first.key_id
    assert len(first.key_id) == 16
    raw = first.public.public_bytes_raw()
    assert first.key_id == hashlib.sha256(raw).hexdigest()[:16]


# -- one per case, and a crash leaves nothing ---------------------------------------------------------


def test_a_cases_backup_is_made_once(world, october, backup_dir, quick_statements, actor_of):
    case = make_case(world.merchant_a)
    first = backup_create(actor=JOB, merchant_id=world.merchant_a.pk, case_id=case.pk)
    again = backup_create(
        actor=actor_of(world.user("merchant_a")), merchant_id=world.merchant_a.pk, case_id=case.pk
    )
    assert again.pk == first.pk
    assert DataBackup.objects.filter(case=case).count() == 1
    assert [p.name for p in (backup_dir / world.merchant_a.mid).iterdir()] == [first.path.split("/")[1]]
    assert backup_events() == [EventType.DATA_BACKUP_CREATED]
    assert json.loads(members(backup_dir / first.path)["manifest.json"])["closure_case"] == case.number
    # Without a case, each request makes a new one (the merchant may back up at any time).
    other = backup_create(actor=JOB, merchant_id=world.merchant_a.pk)
    assert other.pk != first.pk
    assert other.case is None


def test_a_crash_mid_write_leaves_no_backup_and_the_next_one_clears_old_leftovers(
    world, october, backup_dir, monkeypatch
):
    folder = backup_dir / world.merchant_a.mid
    folder.mkdir(parents=True)
    # What a worker killed yesterday left behind.
    (folder / ".work-backup-old").mkdir()
    (folder / ".work-backup-old" / "transactions.csv").write_bytes(b"id\r\n")
    (folder / ".backup-old.zip.part").write_bytes(b"PK")
    old = time.time() - 7 * 3600
    for leftover in (folder / ".work-backup-old", folder / ".backup-old.zip.part"):
        os.utime(leftover, (old, old))

    def broken(merchant, month):
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(backups, "statement_pdf", broken)
    with assert_nothing_recorded(DataBackup.objects.all()), pytest.raises(RuntimeError):
        backup_create(actor=JOB, merchant_id=world.merchant_a.pk)
    assert sorted(p.name for p in folder.iterdir()) == []  # its own staging removed, the old too

    monkeypatch.setattr(backups, "statement_pdf", lambda merchant, month: b"%PDF")
    backup = backup_create(actor=JOB, merchant_id=world.merchant_a.pk)
    assert [p.name for p in folder.iterdir()] == [backup.path.split("/")[1]]


# -- who may ------------------------------------------------------------------------------------------

MAY_CREATE_FOR_A = ["admin", "reviewer", "warehouse", "agent_a", "merchant_a"]
NOT_FOUND_FOR_A = ["agent_a1", "agent_b", "merchant_b"]


@pytest.mark.parametrize("persona", MAY_CREATE_FOR_A)
def test_the_merchant_its_agent_and_staff_make_and_read_its_backup(
    world, backup_dir, quick_statements, actor_of, persona
):
    who = actor_of(world.user(persona))
    backup = backup_create(actor=who, merchant_id=world.merchant_a.pk)
    assert backup.created_by_label == persona
    assert list(backups.backups_visible_to(world.user(persona))) == [backup]
    download = backup_download(actor=who, backup_id=backup.pk)
    assert download.path == backup_dir / backup.path
    assert backup_events() == [EventType.DATA_BACKUP_CREATED, EventType.DATA_BACKUP_DOWNLOADED]


@pytest.mark.parametrize("persona", NOT_FOUND_FOR_A)
def test_another_tenant_finds_no_merchant_and_no_backup_and_nothing_is_recorded(
    world, backup_dir, quick_statements, actor_of, persona
):
    theirs = backup_create(actor=JOB, merchant_id=world.merchant_a.pk)
    case = make_case(world.merchant_a)
    who = actor_of(world.user(persona))
    with assert_nothing_recorded(DataBackup.objects.all()):
        with pytest.raises(NotFound):
            backup_create(actor=who, merchant_id=world.merchant_a.pk)
        with pytest.raises(NotFound):
            backup_create(actor=who, merchant_id=world.merchant_a.pk, case_id=case.pk)
        with pytest.raises(NotFound):
            backup_download(actor=who, backup_id=theirs.pk)
    assert list(backups.backups_visible_to(world.user(persona))) == []
    assert len(list((backup_dir / world.merchant_a.mid).iterdir())) == 1


def test_a_case_of_another_merchant_is_not_found(world, backup_dir, quick_statements):
    case_b = make_case(world.merchant_b)
    with assert_nothing_recorded(DataBackup.objects.all()), pytest.raises(NotFound):
        backup_create(actor=JOB, merchant_id=world.merchant_a.pk, case_id=case_b.pk)


def test_a_read_only_token_makes_no_backup(world, backup_dir, quick_statements):
    token = Actor(kind="token", user=world.user("merchant_a"), label="merchant_a", read_only=True)
    with assert_nothing_recorded(DataBackup.objects.all()), pytest.raises(PermissionDenied):
        backup_create(actor=token, merchant_id=world.merchant_a.pk)
    assert not backup_dir.exists() or not any(backup_dir.rglob("*.zip"))


# -- the end of retention -----------------------------------------------------------------------------


def sealed_kyc(merchant) -> tuple[keyring.DataKey, bytes, str]:
    """Give the merchant a data key with its KYC sealed under it (as onboarding does)."""
    key = keyring.new_key()
    type(merchant).objects.filter(pk=merchant.pk).update(data_key=key)
    where = f"merchant:{merchant.pk}:kyc"
    return key, keyring.seal(key, "身份证 11010519491231002X".encode(), where), where


def close_for_good(world, merchant, sn: str) -> None:
    """Stop and deregister the merchant's terminal, then close the merchant (at the clock's time)."""
    for action, reason in (("deactivate", "cost"), ("deregister", "business_change")):
        terminal_transition(actor=SYSTEM, sn=sn, action=action, reason=reason)
    merchant_close(actor=SYSTEM, mid=merchant.mid, reason="shop_closed")


def test_the_sweep_shreds_only_merchants_past_retention_and_keeps_their_transactions(world, settings):
    settings.POSFLEET_CLOSURE = {**settings.POSFLEET_CLOSURE, "RETENTION_YEARS": 3}  # the floor is 5
    closed_at = datetime(2027, 1, 10, 9, tzinfo=SH)
    october = build_october(world)  # merchant A, its terminal SN-STMT-0001, transactions
    key_a, kyc_a, where_a = sealed_kyc(world.merchant_a)
    key_b, kyc_b, where_b = sealed_kyc(world.merchant_b)
    key_a1, kyc_a1, where_a1 = sealed_kyc(world.merchant_a1)
    with time_machine.travel(closed_at - timedelta(days=30), tick=False):
        make_terminal(world, "SN-B-KEEP", Status.ACTIVE, merchant=world.merchant_b)
        make_terminal(world, "SN-A1-OPEN", Status.ACTIVE, merchant=world.merchant_a1)
    with time_machine.travel(closed_at, tick=False):
        close_for_good(world, world.merchant_a, october.terminal.sn)  # due after 5 years
        merchant_close(
            actor=SYSTEM, mid=world.merchant_b.mid, reason="shop_closed"
        )  # a terminal still with it
        close_for_good(world, world.merchant_a1, "SN-A1-OPEN")
        make_case(world.merchant_a1, "CL-OPEN-0001")  # a case still open
    transactions = Transaction.objects.filter(merchant=world.merchant_a).aggregate(
        n=Count("id"), s=Sum("amount_fen")
    )

    assert retention_sweep(actor=JOB, at=closed_at + timedelta(days=5 * 365 - 2)) == 0  # not yet 5 years
    assert retention_sweep(actor=JOB, at=closed_at + timedelta(days=5 * 365 + 2)) == 1
    assert retention_sweep(actor=JOB, at=closed_at + timedelta(days=5 * 365 + 3)) == 0  # once

    key_a.refresh_from_db()
    with pytest.raises(KeyShredded):
        keyring.unseal(key_a, kyc_a, where_a)
    assert bytes(key_a.wrapped) == b""
    assert key_a.shredded_at is not None
    for key, sealed, where in ((key_b, kyc_b, where_b), (key_a1, kyc_a1, where_a1)):
        key.refresh_from_db()
        assert keyring.unseal(key, sealed, where).startswith("身份证".encode())
    # The acquiring records stay, to the fen.
    assert Transaction.objects.filter(merchant=world.merchant_a).aggregate(
        n=Count("id"), s=Sum("amount_fen")
    ) == (transactions)
    shredded = AuditEvent.objects.filter(event_type=EventType.MERCHANT_DATA_SHREDDED)
    assert list(shredded.values_list("subject_id", "actor_label")) == [(world.merchant_a.mid, "test-backup")]
    assert shredded.get().after["retention_years"] == 5


def test_only_the_scheduler_and_admins_run_the_sweep(world, actor_of):
    with assert_nothing_recorded(), pytest.raises(PermissionDenied):
        retention_sweep(actor=actor_of(world.user("reviewer")))
    assert retention_sweep(actor=actor_of(world.user("admin"))) == 0


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_the_readme_openssl_command_verifies_the_signature(world, backup_dir, quick_statements, tmp_path):
    backup = backup_create(actor=JOB, merchant_id=world.merchant_b.pk)
    files = members(backup_dir / backup.path)
    (tmp_path / "manifest.json").write_bytes(files["manifest.json"])
    (tmp_path / "manifest.sig.bin").write_bytes(base64.b64decode(files["manifest.sig"]))
    (tmp_path / "posfleet-backup-key.pem").write_text(public_key_pem())
    command = [
        "openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "posfleet-backup-key.pem", "-rawin",
        "-in", "manifest.json", "-sigfile", "manifest.sig.bin",
    ]  # fmt: skip
    assert (
        "openssl pkeyutl -verify -pubin -inkey posfleet-backup-key.pem -rawin" in files["README.txt"].decode()
    )
    verified = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    (tmp_path / "manifest.json").write_bytes(files["manifest.json"].replace(b'"rows"', b'"Rows"', 1))
    assert subprocess.run(command, cwd=tmp_path, capture_output=True, check=False).returncode != 0


def test_the_command_creates_with_progress_lines_and_verifies(world, october, backup_dir, quick_statements):
    out = io.StringIO()
    call_command("backup", "create", "--merchant", world.merchant_a.mid, stdout=out)
    lines = out.getvalue().splitlines()
    backup = DataBackup.objects.get()
    assert lines[0].startswith("[")
    assert "transactions:" in out.getvalue()
    assert lines[-2].startswith("[100%]")
    assert lines[-1].startswith(f"backup {backup.pk} of {world.merchant_a.mid}: ")
    assert AuditEvent.objects.get(subject_type="data_backup").actor_label.startswith("cli:")

    out = io.StringIO()
    call_command("backup", "verify", str(backup_dir / backup.path), stdout=out)
    assert out.getvalue().startswith(f"backup verified: signature valid (key {backup.key_id}), 12 files")

    forged = backup_dir / "forged.zip"
    rewrite(backup_dir / backup.path, forged, lambda n, d: flipped(d, 5) if n == "audit.csv" else d)
    err = io.StringIO()
    with pytest.raises(CommandError, match="backup NOT VERIFIED: 1 problem"):
        call_command("backup", "verify", str(forged), stderr=err)
    assert err.getvalue().strip() == "changed: audit.csv (size or SHA-256 differs from the manifest)"

    with pytest.raises(CommandError, match="not_found"):
        call_command("backup", "create", "--merchant", world.merchant_b.mid, "--user", "merchant_a")
