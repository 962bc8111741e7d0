"""Background jobs in the console: start an export or an import, watch any job's progress (the page
polls with htmx every second; without JavaScript it refreshes itself), then download the export or
read the import's report and confirm it."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from posfleet.console.forms import TerminalFilterForm
from posfleet.console.presentation import command_view
from posfleet.console.views.actions import result_context
from posfleet.console.views.base import console_login_required, is_htmx, render_page
from posfleet.console.views.money.common import forbidden, signed_in
from posfleet.fleet.jobs import EXPORT, IMPORT, actor_params
from posfleet.fleet.states import Command
from posfleet.fleet.transfer import TERMINAL_EXPORT, require_import_permission
from posfleet.iam.web import actor_from_request
from posfleet.platform import jobs
from posfleet.platform.errors import NotFound, PermissionDenied
from posfleet.platform.models import Job

UPLOAD_MAX = 50 * 1024 * 1024


def _title(job: Job) -> str:
    if job.kind == EXPORT:
        return _("Export of terminals (%(fmt)s)") % {"fmt": str(job.params.get("format", "")).upper()}
    if job.kind == IMPORT:
        return _("Import of terminals") if job.params.get("commit") else _("Check of an import file")
    return _("Action on %(n)s terminals") % {"n": len(job.params.get("sns", []))}


def _job(request: HttpRequest, job_id: str) -> Job:
    try:
        return jobs.job_for(signed_in(request).pk, job_id)
    except NotFound as exc:
        raise Http404 from exc


@console_login_required
@require_GET
def job_view(request: HttpRequest, job_id: str) -> HttpResponse:
    job = _job(request, job_id)
    dialog = request.GET.get("dialog", "")
    if dialog:  # the bulk action's modal polls here
        return _dialog(request, job, dialog)
    context = {"job": job, "title": _title(job), "result": job.result or {}}
    return render_page(request, "console/jobs/job.html", context, partial="progress")


def _dialog(request: HttpRequest, job: Job, command: str) -> HttpResponse:
    try:
        cmd = Command(command)
    except ValueError as exc:
        raise Http404 from exc
    context: dict[str, Any] = {"command": command_view(cmd), "job": job}
    if not job.finished or job.status == Job.Status.FAILED:
        return render_page(request, "console/actions/dialog.html", context, partial="running")
    context.update(result_context((job.result or {}).get("results", [])))
    response = render_page(request, "console/actions/dialog.html", context, partial="result")
    if is_htmx(request) and context["done"]:
        response["HX-Trigger"] = "terminals-changed"
    return response


@console_login_required
@require_GET
def job_download(request: HttpRequest, job_id: str) -> HttpResponseBase:
    job = _job(request, job_id)
    if job.kind != EXPORT or job.status != Job.Status.DONE or not job.result:
        raise Http404
    path = jobs.job_file(job, job.result["format"])
    if not path.exists():
        raise Http404
    # terminals-20261020-101500.csv, in the provider's time like every time the console shows
    name = (
        TERMINAL_EXPORT.filename(job.result["format"], at=job.finished_at) if job.finished_at else path.name
    )
    return FileResponse(path.open("rb"), as_attachment=True, filename=name)


# -- starting -------------------------------------------------------------------------------------------


@console_login_required
@require_POST
def export_start(request: HttpRequest) -> HttpResponse:
    user = signed_in(request)
    fmt = request.POST.get("format", "csv")
    if fmt not in TERMINAL_EXPORT.formats:
        raise Http404
    form = TerminalFilterForm(request.POST, user=user)
    filters = form.filters()
    back = reverse("console:terminals") + f"?{form.canonical().urlencode()}"
    if form.filter_error:  # the list, with the same filters, says why
        return HttpResponseRedirect(back)
    if form.dormant_window() or form.value("selected"):
        # The export job runs the fleet's filters only; it does not leave out what it cannot.
        messages.error(
            request,
            _("The export does not take the dormant filter or “Only the selection”: remove them to export."),
        )
        return HttpResponseRedirect(back)
    params = {
        "format": fmt,
        "filters": {
            "statuses": list(filters.statuses),
            "model": filters.model,
            "agent": filters.agent,
            "merchant": filters.merchant,
            "store": filters.store,
            "sim_expires_from": filters.sim_expires_from.isoformat() if filters.sim_expires_from else "",
            "sim_expires_to": filters.sim_expires_to.isoformat() if filters.sim_expires_to else "",
            "q": filters.q,
        },
        **actor_params(actor_from_request(request)),
    }
    job = jobs.start(EXPORT, user_id=user.pk, params=params)
    return HttpResponseRedirect(reverse("console:job", args=[job.pk]))


@console_login_required
@require_http_methods(["GET", "POST"])
def import_start(request: HttpRequest) -> HttpResponse:
    user = signed_in(request)
    try:
        require_import_permission(actor_from_request(request))
    except PermissionDenied:
        return forbidden(request, _("Terminals are imported by the warehouse and platform admins."))
    error = ""
    if request.method == "POST":
        upload = request.FILES.get("file")
        name = (upload.name or "").lower() if upload else ""
        extension = "xlsx" if name.endswith(".xlsx") else "csv"
        if upload is None:
            error = _("Choose a CSV or Excel file.")
        elif upload.size and upload.size > UPLOAD_MAX:
            error = _("The file is larger than 50 MB; split it or use the command line.")
        else:
            path = jobs.job_folder() / f"upload-{uuid.uuid4()}.{extension}"
            with path.open("wb") as out:
                for chunk in upload.chunks():
                    out.write(chunk)
            params = {
                "path": str(path),
                "format": extension,
                "commit": False,
                "skip_invalid": request.POST.get("skip_invalid") == "on",
                **actor_params(actor_from_request(request)),
            }
            job = jobs.start(IMPORT, user_id=user.pk, params=params)
            return HttpResponseRedirect(reverse("console:job", args=[job.pk]))
    return render_page(request, "console/jobs/import.html", {"error": error, "max_mb": UPLOAD_MAX // 2**20})


@console_login_required
@require_POST
def import_commit(request: HttpRequest, job_id: str) -> HttpResponse:
    """Write the rows of a checked file: a new job on the same upload, as the same person."""
    checked = _job(request, job_id)
    result = checked.result or {}
    if checked.kind != IMPORT or checked.params.get("commit") or checked.status != Job.Status.DONE:
        raise Http404
    if not result.get("valid") or result.get("file_errors"):
        messages.error(request, _("There is nothing to import in this file."))
        return HttpResponseRedirect(reverse("console:job", args=[checked.pk]))
    params = {**checked.params, "commit": True, **actor_params(actor_from_request(request))}
    job = jobs.start(IMPORT, user_id=checked.user_id, params=params)
    return HttpResponseRedirect(reverse("console:job", args=[job.pk]))
