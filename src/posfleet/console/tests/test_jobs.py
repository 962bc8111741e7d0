"""Long console work as background jobs: a bulk action over many terminals, an export and an import,
each with its progress shown (the dialog or page polls the job) and its result kept for its owner."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from posfleet.audit.models import AuditEvent
from posfleet.console.tests.helpers import htmx, totp
from posfleet.fleet.models import Terminal
from posfleet.fleet.states import Status
from posfleet.platform import jobs
from posfleet.platform.models import Job
from posfleet.testing.personas import make_terminal

pytestmark = pytest.mark.django_db


@pytest.fixture
def small_batches(settings):
    """Anything above 3 terminals runs as a job (the real threshold is 50)."""
    settings.POSFLEET = {**settings.POSFLEET, "BULK_SYNC_MAX": 3}


@pytest.fixture
def five(world):
    return [make_terminal(world, f"SN-JOB-{i:04d}", Status.ACTIVE).sn for i in range(1, 6)]


def test_a_bulk_action_on_many_terminals_runs_as_a_job_with_progress(small_batches, five, login, clock):
    admin = login("admin")
    response = admin.post(
        "/console/terminals/actions/suspend/",
        {"sn": [*five, "SN-NOT-THERE"], "reason": "risk", "note": "audit"},
        **htmx(),
    )
    html = response.content.decode()
    assert 'data-testid="action-running"' in html
    job = Job.objects.get()
    assert (job.kind, job.status, job.total) == ("fleet.bulk_transition", "queued", 6)
    assert Terminal.objects.filter(sn__in=five, status=Status.SUSPENDED).count() == 0  # not yet

    polled = admin.get(f"/console/jobs/{job.pk}/?dialog=suspend", **htmx()).content.decode()
    assert 'data-testid="action-running"' in polled  # still waiting: the poll goes on

    done = jobs.run(str(job.pk))  # what the worker does
    assert (done.status, done.done, done.total) == ("done", 6, 6)
    assert Terminal.objects.filter(sn__in=five, status=Status.SUSPENDED).count() == 5
    assert AuditEvent.objects.filter(event_type="terminal.suspended", actor_label="admin").count() == 5

    result = admin.get(f"/console/jobs/{job.pk}/?dialog=suspend", **htmx())
    html = result.content.decode()
    assert 'data-testid="action-result"' in html
    assert html.count('data-ok="true"') == 5
    assert 'data-testid="result-SN-NOT-THERE" data-ok="false"' in html
    assert result["HX-Trigger"] == "terminals-changed"
    assert jobs.run(str(job.pk)).status == "done"  # a second run does nothing
    assert AuditEvent.objects.filter(event_type="terminal.suspended").count() == 5

    other = login("warehouse")
    assert other.get(f"/console/jobs/{job.pk}/").status_code == 404
    assert other.get("/console/jobs/not-a-uuid/").status_code == 404


def test_the_job_acts_with_the_step_up_given_when_it_started(small_batches, five, login, clock):
    admin = login("admin")
    admin.post(
        "/console/terminals/actions/deactivate/",
        {"sn": five, "reason": "cost", "totp": totp()},
        **htmx(),
    )
    job = Job.objects.get()
    assert job.params["stepped_up_at"]
    jobs.run(str(job.pk))
    assert Terminal.objects.filter(sn__in=five, status=Status.DEACTIVATED).count() == 5


def test_export_as_a_job_then_download(world, five, login, clock):
    make_terminal(world, "SN-JOB-B-01", Status.ACTIVE, merchant=world.merchant_b)
    agent = login("agent_a")
    response = agent.post("/console/terminals/export/", {"format": "csv", "status": "active"})
    job = Job.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/console/jobs/{job.pk}/"
    page = agent.get(response["Location"]).content.decode()
    assert 'data-status="queued"' in page
    assert 'hx-trigger="every 1s"' in page

    jobs.run(str(job.pk))
    page = agent.get(f"/console/jobs/{job.pk}/").content.decode()
    assert 'data-testid="job-download"' in page
    assert "every 1s" not in page  # finished: polling stops
    download = agent.get(f"/console/jobs/{job.pk}/download/")
    rows = list(csv.reader(io.StringIO(b"".join(download.streaming_content).decode("utf-8-sig"))))
    assert sorted(r[0] for r in rows[1:]) == five  # agent A's active terminals, not merchant B's
    assert login("agent_b").get(f"/console/jobs/{job.pk}/download/").status_code == 404


def test_import_is_checked_first_then_confirmed(world, login, clock):
    body = "sn,model\nSN-IMP-0001,pax-a920\nSN-IMP-0002,pax-a920\nSN-IMP-0003,no-such-model\n"
    warehouse = login("warehouse")
    assert login("agent_a").get("/console/terminals/import/").status_code == 403

    upload = SimpleUploadedFile("delivery.csv", body.encode(), "text/csv")
    response = warehouse.post("/console/terminals/import/", {"file": upload})
    check = Job.objects.get()
    jobs.run(str(check.pk))
    page = warehouse.get(response["Location"]).content.decode()
    assert 'data-testid="import-errors"' in page
    assert "no-such-model" in page or "SN-IMP-0003" in page
    assert 'data-testid="import-commit"' not in page  # a row has errors and skipping was not asked
    assert not Terminal.objects.filter(sn__startswith="SN-IMP").exists()

    upload = SimpleUploadedFile("delivery.csv", body.encode(), "text/csv")
    response = warehouse.post("/console/terminals/import/", {"file": upload, "skip_invalid": "on"})
    checked = Job.objects.exclude(pk=check.pk).get()
    jobs.run(str(checked.pk))
    page = warehouse.get(response["Location"]).content.decode()
    assert 'data-testid="import-commit"' in page
    committed = warehouse.post(f"/console/jobs/{checked.pk}/import/")
    write = Job.objects.exclude(pk__in=[check.pk, checked.pk]).get()
    assert committed["Location"] == f"/console/jobs/{write.pk}/"
    jobs.run(str(write.pk))
    assert sorted(Terminal.objects.filter(sn__startswith="SN-IMP").values_list("sn", flat=True)) == [
        "SN-IMP-0001",
        "SN-IMP-0002",
    ]
    page = warehouse.get(committed["Location"]).content.decode()
    assert 'data-testid="import-written"' in page


def test_a_job_that_breaks_fails_with_a_safe_message(world, login, clock):
    warehouse = login("warehouse")
    job = jobs.start(  # a broken job: no terminals listed (a KeyError inside the runner)
        "fleet.bulk_transition",
        user_id=world.user("warehouse").pk,
        params={"action": "suspend", "note": "call Zhang San 13800138000"},
    )
    done = jobs.run(str(job.pk))
    assert done.status == "failed"
    assert done.error == "The work stopped on an unexpected error; it was logged."
    assert "13800138000" not in done.error
    page = warehouse.get(f"/console/jobs/{job.pk}/").content.decode()
    assert 'data-testid="job-failed"' in page
