"""The console's session works on the API too, with CSRF enforced on unsafe methods."""

from __future__ import annotations

from django.test import Client

from posfleet.api.tests.helpers import SN_A, Api, assert_problem, trace
from posfleet.testing.sessions import sign_in


def test_a_session_reads_as_its_user(fleet, world, client):
    sign_in(client, world.user("agent_a1"))
    api = Api(client=client)
    me = api.get("/me").json()
    assert (me["username"], me["auth"], me["token_id"], me["organisation"]["code"]) == (
        "agent_a1",
        "session",
        None,
        "AG-A1",
    )
    assert [t["sn"] for t in api.get("/terminals").json()["items"]] == ["SN-A1-0001"]


def test_unsafe_methods_need_the_csrf_token(fleet, world, clock):
    client = Client(enforce_csrf_checks=True)
    sign_in(client, world.user("admin"))
    api = Api(client=client)
    before = trace(SN_A)
    suspend = {"action": "suspend", "reason": "risk"}
    assert_problem(api.post(f"/terminals/{SN_A}/transitions", suspend), 403, "csrf_failed")
    assert_problem(api.delete("/tokens/1"), 403, "csrf_failed")
    assert trace(SN_A) == before
    # Reads need no CSRF token; the docs page hands one out (as a cookie) for "try it out".
    assert api.get("/me").status_code == 200
    assert client.get("/api/v1/docs").status_code == 200
    csrf = client.cookies["csrftoken"].value
    done = api.post(f"/terminals/{SN_A}/transitions", suspend, **{"X-CSRFToken": csrf})
    assert done.json()["status"] == "suspended"


def test_a_signed_out_session_is_401_not_a_csrf_error(fleet, world):
    client = Client(enforce_csrf_checks=True)
    response = Api(client=client).post(
        f"/terminals/{SN_A}/transitions", {"action": "suspend", "reason": "risk"}
    )
    assert_problem(response, 401, "not_authenticated")


def test_an_inactive_users_session_and_tokens_stop_working(fleet, world, api_as, client):
    token = api_as("merchant_a")
    sign_in(client, world.user("merchant_a"))
    user = world.user("merchant_a")
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert_problem(Api(client=client).get("/me"), 401, "not_authenticated")
    assert_problem(token.get("/me"), 401, "not_authenticated")
