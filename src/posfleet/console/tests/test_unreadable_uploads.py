"""A multipart upload the server cannot read (no boundary in its Content-Type) is a 400 with a page that
says so, on every console upload form; nothing is stored and no job starts."""

from __future__ import annotations

import pytest

from posfleet.audit.models import AuditEvent
from posfleet.enrollment.models import Application, KycDocument
from posfleet.platform import jobs
from posfleet.platform.models import Job, OutboxMessage

pytestmark = pytest.mark.django_db

BODY = b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\nsn,model\r\n--x--\r\n'


def stored() -> tuple[int, ...]:
    return (
        Job.objects.count(),
        len(list(jobs.job_folder().iterdir())),
        Application.objects.count(),
        KycDocument.objects.count(),
        AuditEvent.objects.count(),
        OutboxMessage.objects.count(),
    )


@pytest.mark.parametrize(
    ("persona", "path"),
    [
        ("warehouse", "/console/terminals/import/"),
        ("agent_a", "/console/applications/new/"),
        ("agent_a", "/console/applications/AP0000000001/upload/"),
    ],
)
@pytest.mark.parametrize("content_type", ["multipart/form-data", "multipart/form-data; boundary="])
def test_an_upload_without_a_boundary_is_a_400_that_says_why(world, login, persona, path, content_type):
    before = stored()
    client = login(persona, raise_request_exception=False)
    response = client.post(path, BODY, content_type=content_type, headers={"Accept-Language": "en"})
    assert response.status_code == 400
    assert response["Content-Type"] == "text/html; charset=utf-8"
    page = response.content.decode()
    assert 'data-testid="bad-request"' in page
    assert (
        "The upload could not be read: the form arrived without the boundary that separates its parts."
        in page
    )
    assert stored() == before
