"""/backups: a merchant's data backup (数据备份) — its transactions, settlements, contracts and audit trail
(CSV and Parquet), its monthly statements (PDF), a manifest of SHA-256 sums signed with Ed25519 — made,
listed and downloaded in the caller's scope (closure/backup.py). Others' backups are 404."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from ninja import Query, Router

from posfleet.api import backup_schemas as b
from posfleet.api import presenters
from posfleet.api import schemas as s
from posfleet.api.auth import IdempotencyKey, actor
from posfleet.api.idempotency import Outcome, execute
from posfleet.api.pagination import PageQuery, keyset
from posfleet.closure.backup import backup_create, backup_download, backups_visible_to, iter_file
from posfleet.closure.models import DataBackup
from posfleet.iam.models import Role, User
from posfleet.parties.selectors import merchant_for, merchant_of_organisation
from posfleet.platform.context import Actor
from posfleet.platform.errors import NotFound, ValidationFailed

router = Router(tags=["backups"])

ZIP_CONTENT_TYPE = "application/zip"
ZIP_RESPONSE = {
    "responses": {
        200: {
            "description": "The backup as a zip file (see its README.txt for how to verify it).",
            "content": {ZIP_CONTENT_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        }
    }
}


def _user(request: HttpRequest) -> User:
    user = actor(request).user
    assert user is not None
    return user


def _present(backup: DataBackup) -> b.BackupOut:
    return b.BackupOut(
        id=backup.pk,
        merchant=backup.merchant.mid,
        closure_case=backup.case.number if backup.case is not None else None,
        created_at=backup.created_at,
        created_by=backup.created_by_label,
        size_bytes=backup.size_bytes,
        sha256=backup.sha256,
        manifest_sha256=backup.manifest_sha256,
        key_id=backup.key_id,
        download_url=reverse("api:backup_download", args=[backup.pk]),
    )


@router.get("/backups", summary="List data backups", response=s.responses({200: b.BackupPage}, s.READ_LIST))
def backups_list(request: HttpRequest, filters: Query[b.BackupQuery], page: Query[PageQuery]) -> b.BackupPage:
    """Backups of the merchants the caller may see, newest first."""
    qs = backups_visible_to(_user(request))
    if filters.merchant:
        qs = qs.filter(merchant__mid=filters.merchant.strip().upper())
    rows, cursor = keyset(qs, list_name="backups", key="id", page=page, descending=True)
    return b.BackupPage(items=[_present(row) for row in rows], next_cursor=cursor)


@router.post("/backups", summary="Make a data backup", response=s.responses({201: b.BackupOut}, s.WRITE))
def backups_create(
    request: HttpRequest, body: b.BackupIn, idempotency_key: IdempotencyKey = None
) -> HttpResponse:
    """Write the merchant's backup now and answer it (this may take some seconds): the merchant itself
    (`merchant` may be left out), the agent that signed it, or the provider's staff."""

    def work(who: Actor) -> Outcome:
        assert who.user is not None
        if body.merchant:
            merchant = merchant_for(who.user, body.merchant.strip().upper())
        elif who.user.role == Role.MERCHANT and who.user.organisation_id is not None:
            own = merchant_of_organisation(who.user.organisation_id)
            if own is None:
                raise NotFound()
            merchant = own
        else:
            raise ValidationFailed(_("Give the merchant ID (MID) to back up."), field="merchant")
        backup = backup_create(actor=who, merchant_id=merchant.pk)
        return Outcome(201, presenters.dump(_present(backup)))

    return execute(request, actor(request), work, key=idempotency_key)


@router.get(
    "/backups/{backup_id}/download",
    summary="Download a data backup",
    url_name="backup_download",
    response=s.responses({}, (*s.READ_ONE, 410)),
    openapi_extra=ZIP_RESPONSE,
)
def backup_download_file(request: HttpRequest, backup_id: int) -> StreamingHttpResponse:
    """The zip, streamed; each download is recorded in the audit trail."""
    download = backup_download(actor=actor(request), backup_id=backup_id)
    response = StreamingHttpResponse(iter_file(download.path), content_type=ZIP_CONTENT_TYPE)
    response["Content-Length"] = str(download.backup.size_bytes)
    response["Content-Disposition"] = f'attachment; filename="{download.filename}"'
    response["Cache-Control"] = "private, no-store"
    return response
