"""/api/v1/backups: a merchant's data backup made, listed and downloaded in the caller's scope; others'
backups are a problem 404 and nothing is recorded; each download is audited; the public key is served
at /.well-known/posfleet-backup-key. The console page (/console/backups/) runs the same through a job."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from django.test import Client

from posfleet.audit.models import AuditEvent
from posfleet.audit.vocabulary import EventType
from posfleet.closure import backup as backups
from posfleet.closure.backup import backup_create, backup_verify
from posfleet.closure.backup_signing import public_key_pem, signing_key
from posfleet.closure.models import DataBackup
from posfleet.platform import jobs
from posfleet.platform.context import Actor
from posfleet.platform.models import Job
from posfleet.testing.sessions import sign_in

MID_A, MID_B = "100000000000001", "100000000000002"
JOB = Actor.job("test-backups-api")


@pytest.fixture(autouse=True)
def backup_dir(settings, tmp_path, monkeypatch):
    settings.POSFLEET_CLOSURE = {**settings.POSFLEET_CLOSURE, "BACKUP_DIR": tmp_path / "backups"}
    # Statements as a few bytes, not WeasyPrint's PDF: these tests are about the API, not the PDF.
    monkeypatch.setattr(
        backups, "statement_pdf", lambda merchant, month: f"%PDF {merchant.mid} {month}".encode()
    )
    return tmp_path / "backups"


def audit_of(event_type: EventType) -> list[tuple[str, str]]:
    """(subject, the person) of each event of ``event_type`` (a token's label adds "via token …")."""
    rows = (
        AuditEvent.objects.filter(event_type=event_type)
        .order_by("seq")
        .values_list("subject_id", "actor_label")
    )
    return [(subject, label.split(" ")[0]) for subject, label in rows]


def assert_problem(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == code


def test_a_merchant_backs_up_its_own_data_lists_it_and_downloads_it(world, api_as, backup_dir):
    merchant = api_as("merchant_a")
    created = merchant.post("/backups", {})
    assert created.status_code == 201, created.content
    body = created.json()
    backup = DataBackup.objects.get()
    assert body["id"] == backup.pk
    assert body["merchant"] == MID_A
    assert body["closure_case"] is None
    assert body["sha256"] == backup.sha256
    assert body["key_id"] == signing_key().key_id
    assert body["created_by"].startswith("merchant_a via token")
    assert body["download_url"] == f"/api/v1/backups/{backup.pk}/download"
    assert audit_of(EventType.DATA_BACKUP_CREATED) == [(str(backup.pk), "merchant_a")]

    listed = merchant.get("/backups").json()
    assert [item["id"] for item in listed["items"]] == [backup.pk]
    assert listed["next_cursor"] is None

    response = merchant.get(f"/backups/{backup.pk}/download")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == f'attachment; filename="{backup.path.split("/")[1]}"'
    assert "no-store" in response["Cache-Control"]
    content = b"".join(response.streaming_content)
    assert len(content) == int(response["Content-Length"]) == backup.size_bytes
    assert hashlib.sha256(content).hexdigest() == backup.sha256
    assert backup_verify(io.BytesIO(content)).ok
    assert audit_of(EventType.DATA_BACKUP_DOWNLOADED) == [(str(backup.pk), "merchant_a")]


def test_the_agent_and_staff_name_the_merchant_and_see_what_is_theirs(world, api_as):
    mine = api_as("agent_a").post("/backups", {"merchant": MID_A})
    assert mine.status_code == 201, mine.content
    assert mine.json()["merchant"] == MID_A
    b = api_as("admin").post("/backups", {"merchant": MID_B}).json()
    assert {i["merchant"] for i in api_as("admin").get("/backups").json()["items"]} == {MID_A, MID_B}
    assert [i["merchant"] for i in api_as("agent_a").get("/backups").json()["items"]] == [MID_A]
    assert [i["id"] for i in api_as("merchant_b").get("/backups").json()["items"]] == [b["id"]]
    assert api_as("agent_a1").get("/backups").json()["items"] == []
    assert [i["merchant"] for i in api_as("admin").get("/backups", {"merchant": MID_B}).json()["items"]] == [
        MID_B
    ]
    assert api_as("reviewer").get(f"/backups/{b['id']}/download").status_code == 200


@pytest.mark.parametrize("persona", ["merchant_b", "agent_b", "agent_a1"])
def test_another_tenants_backup_is_not_found_and_nothing_is_recorded(world, api_as, persona, backup_dir):
    theirs = backup_create(actor=JOB, merchant_id=world.merchant_a.pk)
    before = (DataBackup.objects.count(), AuditEvent.objects.count())
    other = api_as(persona)
    assert_problem(other.get(f"/backups/{theirs.pk}/download"), 404, "not_found")
    assert_problem(other.get("/backups/999999/download"), 404, "not_found")
    assert_problem(other.post("/backups", {"merchant": MID_A}), 404, "not_found")
    assert (DataBackup.objects.count(), AuditEvent.objects.count()) == before
    assert len(list((backup_dir / MID_A).iterdir())) == 1
    body = other.get(f"/backups/{theirs.pk}/download").content.decode()
    assert MID_A not in body
    assert theirs.sha256 not in body


def test_refusals_before_anything_is_written(world, api_as):
    read_only = api_as("merchant_a", "read")  # its token made (and audited) before counting
    before = (DataBackup.objects.count(), AuditEvent.objects.count())
    assert_problem(api_as(None).get("/backups"), 401, "not_authenticated")
    assert_problem(api_as(None).post("/backups", {}), 401, "not_authenticated")
    assert_problem(read_only.post("/backups", {}), 403, "permission_denied")
    refused = api_as("agent_a").post("/backups", {})
    assert_problem(refused, 422, "validation_error")
    assert refused.json()["field"] == "merchant"
    assert (DataBackup.objects.count(), AuditEvent.objects.count()) == before


def test_a_retried_request_with_the_same_key_makes_one_backup(world, api_as):
    merchant = api_as("merchant_a")
    first = merchant.post("/backups", {}, key="backup-1")
    again = merchant.post("/backups", {}, key="backup-1")
    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert json.loads(again.content) == json.loads(first.content)
    assert DataBackup.objects.count() == 1


def test_a_backup_whose_file_is_gone_is_410(world, api_as, backup_dir):
    backup = backup_create(actor=JOB, merchant_id=world.merchant_a.pk)
    (backup_dir / backup.path).unlink()
    assert_problem(api_as("merchant_a").get(f"/backups/{backup.pk}/download"), 410, "backup_missing")
    assert audit_of(EventType.DATA_BACKUP_DOWNLOADED) == []


def test_the_public_key_is_served_to_anyone_and_verifies_a_bundle(world, backup_dir):
    response = Client().get("/.well-known/posfleet-backup-key")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response.content.decode() == public_key_pem()
    assert response.content.startswith(b"-----BEGIN PUBLIC KEY-----")
    backup = backup_create(actor=JOB, merchant_id=world.merchant_b.pk)
    with zipfile.ZipFile(backup_dir / backup.path) as bundle:
        manifest, signature = bundle.read("manifest.json"), bundle.read("manifest.sig")
        readme = bundle.read("README.txt").decode()
    load_pem_public_key(response.content).verify(base64.b64decode(signature), manifest)
    assert "如何验证此备份" in readme
    assert "How to verify this backup" in readme
    assert signing_key().key_id in readme
    assert "/.well-known/posfleet-backup-key" in readme


# -- the console page ----------------------------------------------------------------------------------


def test_the_console_page_makes_a_backup_as_a_job_and_offers_it(world):
    client = sign_in(Client(), world.user("merchant_a"))
    page = client.get("/console/backups/")
    assert page.status_code == 200
    html = page.content.decode()
    for testid in ("backup-create", "backup-verify-help", "backup-key-link"):
        assert f'data-testid="{testid}"' in html
    assert 'data-testid="backup-merchant"' not in html  # a merchant backs up its own data
    assert 'href="/console/backups/"' in html  # its navigation entry

    started = client.post("/console/backups/create/")
    job = Job.objects.get(kind="closure.backup")
    assert started.status_code == 302
    assert started["Location"] == f"/console/backups/jobs/{job.pk}/"
    assert job.params["merchant_id"] == world.merchant_a.pk
    jobs.run(str(job.pk))  # what the worker does
    done = client.get(f"/console/backups/jobs/{job.pk}/")
    backup = DataBackup.objects.get()
    assert f'href="/console/backups/{backup.pk}/download/"' in done.content.decode()
    assert 'data-testid="backup-job-download"' in done.content.decode()
    download = client.get(f"/console/backups/{backup.pk}/download/")
    assert download.status_code == 200
    assert hashlib.sha256(b"".join(download.streaming_content)).hexdigest() == backup.sha256
    assert audit_of(EventType.DATA_BACKUP_DOWNLOADED) == [(str(backup.pk), "merchant_a")]


def test_the_console_keeps_others_backups_and_jobs_out_of_reach(world):
    theirs = backup_create(actor=JOB, merchant_id=world.merchant_a.pk)
    client = sign_in(Client(), world.user("merchant_b"))
    before = (DataBackup.objects.count(), AuditEvent.objects.count())
    assert client.get(f"/console/backups/{theirs.pk}/download/").status_code == 404
    assert f"backup-{theirs.pk}" not in client.get("/console/backups/").content.decode()
    agent = sign_in(Client(), world.user("agent_b"))
    assert agent.post("/console/backups/create/", {"merchant": MID_A}).status_code == 404
    assert not Job.objects.exists()
    assert (DataBackup.objects.count(), AuditEvent.objects.count()) == before
