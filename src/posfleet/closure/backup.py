"""A merchant's data backup (数据备份, DOMAIN.md workflow 4 step 6, "Data and privacy"): one zip with its
transactions, settlements, contracts and audit trail (each as CSV and Parquet), its monthly statements
(PDF), a manifest of every file's size, rows and SHA-256, and posfleet's Ed25519 signature of that
manifest (closure/backup_signing.py), so the merchant can prove, without us, that nothing changed.

How a bundle is written, and why:

- rows are read once, ``ITERATOR_CHUNK`` at a time, and each row goes to the CSV and to the Parquet
  file at the same moment (one Parquet row group per ``ROW_GROUP`` rows): the two files of a table hold
  the same rows even while new ones arrive, and memory stays flat however many transactions there are;
- the tables are staged in a work folder, then packed into ``.<name>.zip.part`` beside the final file,
  hashed as they are packed, and the finished zip is renamed into place (atomic on one file system):
  a crash leaves only staging files, which the next backup of the merchant removes;
- the ``DataBackup`` row and its audit row are written in one transaction, after the file is complete;
  a backup of a closure case is made once: asking again returns the one there is.

Amounts are integer fen. Nothing personal beyond what the merchant's statements show: no KYC data,
no contact data, no legal name (the shop's name only); cards are masked as the acquirer reported them.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import time
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from posfleet.audit.services import Entry, record
from posfleet.audit.vocabulary import EventType
from posfleet.billing.merchant_records import activity_months, statement_pdf
from posfleet.closure import backup_rules  # noqa: F401  (registers closure.create_backup, view_backup)
from posfleet.closure import backup_signing as signing
from posfleet.closure.backup_tables import (
    BACKUP_SUBJECT,
    TABLES,
    BackupProgress,
    Progress,
    Staged,
    Tally,
    stage_table,
)
from posfleet.closure.models import ClosureCase, DataBackup
from posfleet.iam.models import User
from posfleet.parties.selectors import merchants_visible_to
from posfleet.platform.clock import now, today
from posfleet.platform.context import Actor
from posfleet.platform.errors import DomainError, NotFound

__all__ = ["BackupProgress", "backup_create", "backup_download", "backup_verify", "backups_visible_to"]

FORMAT = "posfleet-data-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
README = "README.txt"
PART_SUFFIX = ".zip.part"
WORK_PREFIX = ".work-"
STALE_AFTER = timedelta(hours=6)  # a staging leftover older than this belongs to no running backup
COPY_CHUNK = 1024 * 1024

# The parties Merchant, reached through our own foreign key: closure imports no other context's models.
Merchant: Any = DataBackup.merchant.field.related_model


class BackupMissing(DomainError):
    """The backup's row is there but its file is not (removed from the disk by hand)."""

    code = "backup_missing"
    status = 410
    title = _("This backup's file is no longer available; make a new backup.")


# -- who may -----------------------------------------------------------------------------------------


def _merchant(actor: Actor, merchant_id: int) -> Any:
    """The merchant as the actor sees it (others' merchants: 404). Jobs and the system see every one."""
    user = actor.scope_user
    if user is None and not actor.is_system:
        raise NotFound()
    qs = (
        merchants_visible_to(user)
        if user is not None
        else Merchant.objects.select_related("organisation", "agent", "agent__organisation")
    )
    merchant = qs.filter(pk=merchant_id).first()
    if merchant is None:
        raise NotFound()
    return merchant


def backups_visible_to(user: User | None) -> QuerySet[DataBackup]:
    """The backups of the merchants ``user`` may see (None: the system, every backup), newest first."""
    qs = DataBackup.objects.select_related("merchant", "case")
    if user is None:
        return qs
    if not user.is_authenticated or not user.is_active:
        return qs.none()
    return qs.filter(merchant__in=merchants_visible_to(user).values("pk"))


def backup_for(actor: Actor, backup_id: int) -> DataBackup:
    """The backup as the actor sees it: others' (and those of an actor with no one behind it) are 404."""
    user = actor.scope_user
    if user is None and not actor.is_system:
        raise NotFound()
    backup = backups_visible_to(user).filter(pk=backup_id).first()
    if backup is None or not actor.may("closure.view_backup", backup.merchant):
        raise NotFound()
    return backup


def backup_root() -> Path:
    return Path(settings.POSFLEET_CLOSURE["BACKUP_DIR"])


def backup_path(backup: DataBackup) -> Path:
    return backup_root() / backup.path


# -- making one --------------------------------------------------------------------------------------


def backup_create(
    *, actor: Actor, merchant_id: int, case_id: int | None = None, progress: Progress | None = None
) -> DataBackup:
    """Write the merchant's data backup and record it (``data_backup.created``). With ``case_id``, the
    backup of that closure case: made once, asked again it is returned as it is (nothing recorded).
    Others' merchants and cases are ``NotFound``; people need ``closure.create_backup`` (the merchant
    itself, its agent, the provider's staff), jobs and the system pass; a read-only token is refused."""
    merchant = _merchant(actor, merchant_id)
    actor.require("closure.create_backup", merchant)
    case = None
    if case_id is not None:
        case = ClosureCase.objects.filter(pk=case_id, merchant_id=merchant.pk).first()
        if case is None:
            raise NotFound()
        existing = DataBackup.objects.filter(case=case).order_by("id").first()
        if existing is not None:
            return existing

    folder = backup_root() / merchant.mid
    folder.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(folder)
    at = now()
    stem = f"backup-{merchant.mid}-{timezone.localtime(at):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
    final = folder / f"{stem}.zip"
    written = _write_bundle(merchant, case, at, folder, stem, progress)
    try:
        with transaction.atomic():
            if case is not None:
                # Two makers of one case's backup: the first to commit wins, the other's file goes.
                ClosureCase.objects.select_for_update().filter(pk=case.pk).first()
                existing = DataBackup.objects.filter(case=case).order_by("id").first()
                if existing is not None:
                    final.unlink(missing_ok=True)
                    return existing
            backup = DataBackup.objects.create(
                merchant_id=merchant.pk,
                case=case,
                path=f"{merchant.mid}/{final.name}",
                size_bytes=written.size,
                sha256=written.sha256,
                manifest_sha256=written.manifest_sha256,
                signature=written.signature,
                key_id=written.key_id,
                created_at=at,
                created_by_label=actor.label[:120],
            )
            record(
                actor,
                Entry(
                    event_type=EventType.DATA_BACKUP_CREATED,
                    subject_type=BACKUP_SUBJECT,
                    subject_id=str(backup.pk),
                    after={
                        "merchant": merchant.mid,
                        "case": case.number if case is not None else None,
                        "files": written.files,
                        "bytes": written.size,
                        "sha256": written.sha256,
                        "key_id": written.key_id,
                    },
                ),
            )
    except BaseException:
        final.unlink(missing_ok=True)
        raise
    return backup


@dataclass(frozen=True)
class _Written:
    size: int
    sha256: str
    manifest_sha256: str
    signature: str
    key_id: str
    files: int


@dataclass
class _FileEntry:
    name: str
    bytes: int
    sha256: str
    rows: int | None = None


def _remove_leftovers(folder: Path) -> None:
    """Staging files of backups that died (a crash, a killed worker): anything staged longer ago than
    ``STALE_AFTER`` belongs to no running backup."""
    cutoff = time.time() - STALE_AFTER.total_seconds()
    for path in folder.iterdir():
        if not path.name.startswith(".") or path.stat().st_mtime > cutoff:
            continue
        if path.is_dir() and path.name.startswith(WORK_PREFIX):
            shutil.rmtree(path, ignore_errors=True)
        elif path.name.endswith(PART_SUFFIX):
            path.unlink(missing_ok=True)


def _write_bundle(
    merchant: Any, case: ClosureCase | None, at: datetime, folder: Path, stem: str, progress: Progress | None
) -> _Written:
    work = folder / f"{WORK_PREFIX}{stem}"
    part = folder / f".{stem}{PART_SUFFIX}"
    final = folder / f"{stem}.zip"
    work.mkdir()
    months = activity_months(merchant.pk, today())
    tally = Tally(sum(t.rows(merchant).count() for t in TABLES) + len(months), progress)
    try:
        staged: list[Staged] = []
        for table in TABLES:
            staged.extend(stage_table(table.spec, table.rows(merchant), work, tally))
        entries: list[_FileEntry] = []
        with zipfile.ZipFile(part, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as bundle:
            created = timezone.localtime(at).isoformat()
            text = signing.readme(mid=merchant.mid, name=merchant.name, created_at=created)
            entries.append(_put_bytes(bundle, README, text.encode(), at))
            for table_file in staged:
                entries.append(_put_file(bundle, table_file, at))
                table_file.path.unlink()
            for month in months:
                name = f"statements/{month}.pdf"
                entries.append(_put_bytes(bundle, name, statement_pdf(merchant, month), at))
                tally.step(name, report=True)
            manifest = _manifest(merchant, case, created, entries)
            signature = signing.sign(manifest)
            _put_bytes(bundle, MANIFEST, manifest, at)
            _put_bytes(bundle, SIGNATURE, signature.encode(), at)
        with part.open("rb") as out:
            os.fsync(out.fileno())
        size, digest = part.stat().st_size, _sha256_of(part)
        os.replace(part, final)
        tally.step(MANIFEST, 0, report=True)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return _Written(
        size=size,
        sha256=digest,
        manifest_sha256=hashlib.sha256(manifest).hexdigest(),
        signature=signature,
        key_id=signing.signing_key().key_id,
        files=len(entries),
    )


def _manifest(merchant: Any, case: ClosureCase | None, created: str, entries: list[_FileEntry]) -> bytes:
    """The manifest's exact bytes (what is signed): sorted keys, UTF-8, one trailing newline."""
    body = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "merchant": {"mid": merchant.mid, "name": merchant.name},
        "closure_case": case.number if case is not None else None,
        "created_at": created,
        "amounts": "integer fen (1/100 CNY)",
        "signature": {
            "algorithm": signing.ALGORITHM,
            "key_id": signing.signing_key().key_id,
            "file": SIGNATURE,
        },
        "files": [{"name": e.name, "bytes": e.bytes, "rows": e.rows, "sha256": e.sha256} for e in entries],
    }
    return (json.dumps(body, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode()


def _zip_info(name: str, at: datetime, *, stored: bool = False) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=timezone.localtime(at).timetuple()[:6])
    info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


def _put_bytes(bundle: zipfile.ZipFile, name: str, data: bytes, at: datetime) -> _FileEntry:
    bundle.writestr(_zip_info(name, at, stored=name.endswith(".pdf")), data)
    return _FileEntry(name, len(data), hashlib.sha256(data).hexdigest())


def _put_file(bundle: zipfile.ZipFile, staged: Staged, at: datetime) -> _FileEntry:
    """Copy a staged file into the zip, hashing what goes in (the manifest's sum is of these bytes)."""
    digest, size = hashlib.sha256(), 0
    info = _zip_info(staged.name, at, stored=staged.name.endswith(".parquet"))
    with staged.path.open("rb") as source, bundle.open(info, "w", force_zip64=True) as target:
        while chunk := source.read(COPY_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            target.write(chunk)
    return _FileEntry(staged.name, size, digest.hexdigest(), staged.rows)


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(COPY_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# -- checking one -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyResult:
    signature_valid: bool
    key_id: str  # the key the manifest names
    files: int  # files the manifest lists
    problems: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return self.signature_valid and not self.problems


def backup_verify(path: str | Path | IO[bytes]) -> VerifyResult:
    """Check a bundle as its merchant would: the manifest's signature with the current key, and every
    file against the manifest (size and SHA-256), none missing and none extra. Never raises on a
    damaged or forged bundle: what is wrong is listed in ``problems`` (plain English, for the CLI)."""
    problems: list[str] = []
    try:
        with zipfile.ZipFile(path) as bundle:
            return _verify(bundle, problems)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as exc:
        problems.append(f"not a readable zip file ({type(exc).__name__})")
        return VerifyResult(False, "", 0, tuple(problems))


def _verify(bundle: zipfile.ZipFile, problems: list[str]) -> VerifyResult:
    names = bundle.namelist()
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        problems.append(f"files stored twice: {', '.join(duplicated)}")
    if MANIFEST not in names or SIGNATURE not in names:
        problems.append(f"{MANIFEST} or {SIGNATURE} is missing")
        return VerifyResult(False, "", 0, tuple(problems))
    manifest = bundle.read(MANIFEST)
    valid = signing.signature_valid(manifest, bundle.read(SIGNATURE).decode("ascii", "replace"))
    try:
        body = json.loads(manifest)
        listed = {f["name"]: f for f in body["files"]}
        key_id = str(body.get("signature", {}).get("key_id", ""))
    except (ValueError, KeyError, TypeError, AttributeError):
        problems.append(f"{MANIFEST} is not a posfleet manifest")
        return VerifyResult(valid, "", 0, tuple(problems))
    if not valid:
        current = signing.signing_key().key_id
        if key_id and key_id != current:
            problems.append(f"signed by key {key_id}, not by the current key {current}")
        else:
            problems.append(f"the signature of {MANIFEST} is not valid")
    present = set(names) - {MANIFEST, SIGNATURE}
    for name in sorted(set(listed) - present):
        problems.append(f"missing: {name}")
    for name in sorted(present - set(listed)):
        problems.append(f"not in the manifest: {name}")
    for name in sorted(set(listed) & present):
        problems.extend(_check_file(bundle, name, listed[name]))
    return VerifyResult(valid, key_id, len(listed), tuple(problems))


def _check_file(bundle: zipfile.ZipFile, name: str, listed: dict[str, Any]) -> list[str]:
    digest, size = hashlib.sha256(), 0
    try:
        with bundle.open(name) as member:
            while chunk := member.read(COPY_CHUNK):
                digest.update(chunk)
                size += len(chunk)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error):
        return [f"damaged: {name}"]
    if size != listed.get("bytes") or digest.hexdigest() != listed.get("sha256"):
        return [f"changed: {name} (size or SHA-256 differs from the manifest)"]
    return []


# -- handing one out ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Download:
    backup: DataBackup
    path: Path
    filename: str  # what the merchant's browser saves it as


def backup_download(*, actor: Actor, backup_id: int) -> Download:
    """The backup's file for the actor to read, recorded (``data_backup.downloaded``) before the first
    byte goes out. Others' backups are ``NotFound``; a backup whose file is gone is ``BackupMissing``."""
    backup = backup_for(actor, backup_id)
    path = backup_path(backup)
    if not path.is_file():
        raise BackupMissing()
    with transaction.atomic():
        record(
            actor,
            Entry(
                event_type=EventType.DATA_BACKUP_DOWNLOADED,
                subject_type=BACKUP_SUBJECT,
                subject_id=str(backup.pk),
                after={"merchant": backup.merchant.mid, "sha256": backup.sha256},
            ),
        )
    return Download(backup, path, path.name)


def iter_file(path: Path, chunk: int = COPY_CHUNK) -> Iterable[bytes]:
    """The file in pieces, for a streaming response (the file is opened when the first piece is asked)."""
    with path.open("rb") as source:
        while piece := source.read(chunk):
            yield piece
