"""The fleet's long work as background jobs (``platform/jobs.py``): a command over many terminals,
an export, an import. The console starts them and shows their progress; each runs as the person who
started it, with the step-up they gave when they started it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import date, datetime
from pathlib import Path
from typing import Any

from django.conf import settings

from posfleet.fleet.selectors import TerminalFilters
from posfleet.fleet.services import ItemResult, terminals_bulk_transition
from posfleet.fleet.transfer import import_terminals
from posfleet.fleet.transfer.exporting import export_terminals
from posfleet.fleet.transfer.report import ProgressEvent
from posfleet.iam.models import User
from posfleet.platform.context import Actor
from posfleet.platform.jobs import Progress, job_file, register
from posfleet.platform.models import Job

BULK, EXPORT, IMPORT = "fleet.bulk_transition", "fleet.export", "fleet.import"


def actor_params(actor: Actor) -> dict[str, Any]:
    """What a job keeps of the person who started it, to act as them later."""
    return {
        "request_id": actor.request_id,
        "source_ip": actor.source_ip,
        "stepped_up_at": actor.stepped_up_at.isoformat() if actor.stepped_up_at else None,
    }


def _actor(job: Job) -> Actor:
    user = User.objects.get(pk=job.user_id)
    stepped = job.params.get("stepped_up_at")
    return Actor.for_user(
        user,
        request_id=job.params.get("request_id", ""),
        source_ip=job.params.get("source_ip"),
        stepped_up_at=datetime.fromisoformat(stepped) if stepped else None,
    )


def _offset(progress: Progress, start: int, total: int) -> Callable[[int, int], None]:
    """A chunk's progress as a step of the whole bar."""

    def report(done: int, _chunk: int) -> None:
        progress(start + done, total)

    return report


@register(BULK)
def run_bulk(job: Job, progress: Progress) -> dict[str, Any]:
    """Each terminal through its service, ``BULK_MAX_ITEMS`` at a time (a selection or every match of a
    filter may hold many more), with one bar over them all."""
    p = job.params
    sns: list[str] = p["sns"]
    actor = _actor(job)
    limit = settings.POSFLEET["BULK_MAX_ITEMS"]
    results: list[ItemResult] = []
    for start in range(0, len(sns), limit):
        results += terminals_bulk_transition(
            actor=actor,
            sns=sns[start : start + limit],
            action=p["action"],
            reason=p.get("reason", ""),
            note=p.get("note", ""),
            params=p.get("params") or None,
            progress=_offset(progress, start, len(sns)),
        )
    return {"results": [asdict(r) for r in results], "done": sum(1 for r in results if r.ok)}


def _bar(progress: Progress) -> Any:
    def report(event: ProgressEvent) -> None:
        if event.total:
            progress(event.done, event.total)
        elif event.fraction is not None:
            progress(int(event.fraction * 1000), 1000)
        else:
            progress(event.done)

    return report


def _day(text: object) -> date | None:
    return date.fromisoformat(text) if isinstance(text, str) and text else None


@register(EXPORT)
def run_export(job: Job, progress: Progress) -> dict[str, Any]:
    actor = _actor(job)
    fmt = job.params["format"]
    given = job.params["filters"]
    filters = TerminalFilters(
        statuses=tuple(given.get("statuses", ())),
        model=given.get("model", ""),
        agent=given.get("agent", ""),
        merchant=given.get("merchant", ""),
        store=given.get("store", ""),
        sim_expires_from=_day(given.get("sim_expires_from")),
        sim_expires_to=_day(given.get("sim_expires_to")),
        q=given.get("q", ""),
    )
    path = job_file(job, fmt)
    with path.open("wb") as out:
        rows = export_terminals(
            actor=actor, user_or_none=actor.user, filters=filters, fmt=fmt, out=out, progress=_bar(progress)
        )
    return {"rows": rows, "file": path.name, "format": fmt}


@register(IMPORT)
def run_import(job: Job, progress: Progress) -> dict[str, Any]:
    """Validate (and with ``commit``, write) an uploaded file; the upload is removed afterwards."""
    source = Path(job.params["path"])
    try:
        report = import_terminals(
            actor=_actor(job),
            path=str(source),
            fmt=job.params.get("format") or None,
            commit=bool(job.params.get("commit")),
            skip_invalid=bool(job.params.get("skip_invalid")),
            progress=_bar(progress),
        )
    finally:
        if job.params.get("commit"):
            source.unlink(missing_ok=True)
    return {
        "rows": report.rows,
        "valid": report.valid_rows,
        "invalid": report.invalid_rows,
        "written": report.written,
        "committed": report.committed,
        "batch": report.batch,
        "file_errors": [e.message for e in report.file_errors],
        "errors": [
            {"line": e.line, "sn": e.sn, "column": e.column, "message": e.message}
            for e in report.errors[:200]
        ],
        "errors_truncated": len(report.errors) > 200 or report.errors_truncated,
    }
