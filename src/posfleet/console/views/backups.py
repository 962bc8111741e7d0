"""Data backup (数据备份): a merchant downloads its own records at any time — before closing above all
(article 001) — as one signed zip (closure/backup.py). The page lists the backups the user may see,
starts a new one as a background job and shows its progress (htmx polls every second; without
JavaScript the page refreshes itself), serves the files, and says how to verify one. Agents and the
provider's staff use the same page, naming the merchant.

``backup_key`` is public: ``/.well-known/posfleet-backup-key``, the key anyone verifies a bundle with."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from posfleet.closure.backup import BackupMissing, backup_download, backups_visible_to, iter_file
from posfleet.closure.backup_signing import KEY_PATH, public_key_pem, signing_key
from posfleet.closure.backup_tasks import BACKUP_JOB, job_params
from posfleet.console.views.base import console_login_required, render_page
from posfleet.console.views.money.common import forbidden, merchant_in_scope, own_merchant, signed_in
from posfleet.iam.web import actor_from_request
from posfleet.platform import jobs
from posfleet.platform.errors import NotFound
from posfleet.platform.models import Job

PAGE_SIZE = 25


def _context(request: HttpRequest, job: Job | None = None) -> dict[str, Any]:
    user = signed_in(request)
    merchant = own_merchant(user)
    backups = backups_visible_to(user)
    if merchant is not None:
        backups = backups.filter(merchant=merchant)
    page = Paginator(backups.order_by("-created_at", "-id"), PAGE_SIZE).get_page(request.GET.get("page"))
    key = signing_key()
    return {
        "merchant": merchant,
        "page": page,
        "job": job,
        "result": (job.result or {}) if job is not None else {},
        "key_id": key.key_id,
        "key_path": KEY_PATH,
    }


@console_login_required
@require_GET
def backup_list(request: HttpRequest) -> HttpResponse:
    """``/console/backups/``: the backups, the button that makes one, how to verify."""
    return render_page(request, "console/backups.html", _context(request))


@console_login_required
@require_POST
def backup_start(request: HttpRequest) -> HttpResponse:
    """Start a backup of the merchant (a merchant: its own; others name it) as a job, then watch it."""
    user = signed_in(request)
    merchant = own_merchant(user)
    if merchant is None:
        mid = request.POST.get("merchant", "").strip().upper()[:15]
        if not mid:
            return HttpResponseRedirect(reverse("console:backups"))
        merchant = merchant_in_scope(user, mid)
    who = actor_from_request(request)
    if not who.may("closure.create_backup", merchant):
        return forbidden(request, _("You may not back up this merchant's data."))
    job = jobs.start(BACKUP_JOB, user_id=user.pk, params=job_params(who, merchant.pk))
    return HttpResponseRedirect(reverse("console:backup_job", args=[job.pk]))


@console_login_required
@require_GET
def backup_job(request: HttpRequest, job_id: str) -> HttpResponse:
    """The page with the job's progress; htmx asks for the progress alone."""
    try:
        job = jobs.job_for(signed_in(request).pk, job_id)
    except NotFound as exc:
        raise Http404 from exc
    if job.kind != BACKUP_JOB:
        raise Http404
    return render_page(request, "console/backups.html", _context(request, job), partial="progress")


@console_login_required
@require_GET
def backup_file(request: HttpRequest, pk: int) -> HttpResponseBase:
    """The zip, streamed; each download is recorded in the audit trail. Others' backups are 404."""
    try:
        download = backup_download(actor=actor_from_request(request), backup_id=pk)
    except NotFound as exc:
        raise Http404 from exc
    except BackupMissing as exc:
        messages.error(request, str(exc.detail))
        return HttpResponseRedirect(reverse("console:backups"))
    response = StreamingHttpResponse(iter_file(download.path), content_type="application/zip")
    response["Content-Length"] = str(download.backup.size_bytes)
    response["Content-Disposition"] = f'attachment; filename="{download.filename}"'
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
def backup_key(request: HttpRequest) -> HttpResponse:
    """``/.well-known/posfleet-backup-key``: the public key (PEM) that verifies every data backup."""
    response = HttpResponse(public_key_pem(), content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = "public, max-age=3600"
    return response
