"""Bodies of the merchants' data backups (closure/backup.py): the signed bundle of a merchant's records."""

from __future__ import annotations

from datetime import datetime

from ninja import Schema
from pydantic import Field


class BackupQuery(Schema):
    merchant: str = Field("", max_length=15, description="Merchant ID (MID).")


class BackupIn(Schema):
    merchant: str = Field(
        "", max_length=15, description="Merchant ID (MID) whose data to back up; a merchant may leave it out."
    )


class BackupOut(Schema):
    id: int
    merchant: str = Field(description="Merchant ID (MID).")
    closure_case: str | None = Field(description="The closure case it was made for, if any.")
    created_at: datetime
    created_by: str
    size_bytes: int
    sha256: str = Field(description="SHA-256 of the zip file.")
    manifest_sha256: str = Field(description="SHA-256 of its manifest.json, which manifest.sig signs.")
    key_id: str = Field(description="The Ed25519 key that signed it: /.well-known/posfleet-backup-key.")
    download_url: str


class BackupPage(Schema):
    items: list[BackupOut]
    next_cursor: str | None
