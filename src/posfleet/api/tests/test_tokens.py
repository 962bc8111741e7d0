"""/tokens: a user's own tokens; the secret is shown once; revocation stops a token at once."""

from __future__ import annotations

from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from posfleet.api.models import IdempotencyRecord
from posfleet.api.tests.helpers import Api, assert_problem, new_token
from posfleet.audit.models import AuditEvent
from posfleet.iam.models import ApiToken
from posfleet.testing.sessions import sign_in


def test_a_user_lists_only_their_own_tokens_without_secrets(world, api_as):
    new_token(world.user("agent_b"), name="b-only")
    mine = api_as("agent_a").get("/tokens").json()
    assert [(t["name"], t["scope"]) for t in mine["items"]] == [("test", "write")]
    assert set(mine["items"][0]) == {
        "id",
        "name",
        "prefix",
        "scope",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    }
    assert mine["items"][0]["prefix"].startswith("pf_")


def test_create_use_and_revoke_a_token(world, client, clock):
    session = Api(client=sign_in(client, world.user("merchant_a")))
    created = session.post("/tokens", {"name": "till", "scope": "write"}, totp=clock.code())
    assert created.status_code == 201
    body = created.json()
    assert (body["name"], body["scope"], body["revoked_at"]) == ("till", "write", None)
    token = Api(body["secret"])
    assert token.get("/me").json() == {
        "username": "merchant_a",
        "role": "merchant",
        "role_label": "merchant",
        "organisation": {
            "id": world.merchant_a.organisation_id,
            "kind": "merchant",
            "name": "Shop A",
            "code": "100000000000001",
        },
        "language": "en",
        "auth": "token",
        "token_id": body["id"],
        "read_only": False,
    }
    assert [t["id"] for t in session.get("/tokens").json()["items"]] == [body["id"]]
    revoked = session.delete(f"/tokens/{body['id']}")
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert_problem(token.get("/me"), 401, "not_authenticated")
    assert_problem(session.delete(f"/tokens/{body['id']}"), 404, "not_found")


def test_someone_elses_token_cannot_be_revoked(world, api_as):
    new_token(world.user("agent_b"), name="b-token")
    theirs = ApiToken.objects.get(name="b-token")
    assert_problem(api_as("agent_a").delete(f"/tokens/{theirs.pk}"), 404, "not_found")
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


def test_tokens_cannot_create_tokens(world, api_as, clock):
    before = ApiToken.objects.count()
    body = assert_problem(
        api_as("admin").post("/tokens", {"name": "x"}, totp=clock.code()), 403, "permission_denied"
    )
    assert body["detail"] == "Only a signed-in person can create API tokens."
    assert ApiToken.objects.count() == before


def test_a_token_refused_token_creation_spends_and_counts_no_code(world, api_as, clock):
    # Session only: the refusal comes before the code is looked at, so the code stays good for the
    # person's own next step-up and a wrong one counts nothing towards the lockout.
    admin = world.user("admin")
    device = TOTPDevice.objects.get(user=admin)
    audit = AuditEvent.objects.count()
    code = clock.code()
    for totp in (code, clock.wrong_code()):
        assert_problem(
            api_as("admin").post("/tokens", {"name": "x"}, totp=totp, key=f"k-{totp}"),
            403,
            "permission_denied",
        )
    device.refresh_from_db()
    assert (device.last_t, device.throttling_failure_count) == (-1, 0)
    assert AuditEvent.objects.count() == audit
    assert not IdempotencyRecord.objects.exists()
    session = Api(client=sign_in(Client(), admin))
    assert session.post("/tokens", {"name": "mine"}, totp=code).status_code == 201


def test_token_input_is_validated(world, client, clock):
    session = Api(client=sign_in(client, world.user("admin")))
    before = ApiToken.objects.count()
    body = assert_problem(
        session.post("/tokens", {"name": "", "scope": "all"}, totp=clock.code()), 422, "validation_error"
    )
    assert sorted(e["field"] for e in body["errors"]) == ["name", "scope"]
    past = assert_problem(
        session.post("/tokens", {"name": "old", "expires_at": "2001-01-01T00:00:00Z"}, totp=clock.code()),
        422,
        "validation_error",
    )
    assert past["detail"] == "The expiry must be in the future."
    assert ApiToken.objects.count() == before
