"""/tokens: a user's own tokens; the secret is shown once; revocation stops a token at once."""

from __future__ import annotations

from posfleet.api.tests.helpers import Api, assert_problem, new_token
from posfleet.iam.models import ApiToken


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
    client.force_login(world.user("merchant_a"))
    session = Api(client=client)
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


def test_token_input_is_validated(world, client, clock):
    client.force_login(world.user("admin"))
    session = Api(client=client)
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
