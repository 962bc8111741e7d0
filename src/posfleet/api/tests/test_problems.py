"""Every error is application/problem+json with a stable code, the path and the request id; no
traceback, SQL or secret ever reaches a body."""

from __future__ import annotations

from posfleet.api.tests.helpers import SN_A, assert_problem, trace


def test_401_names_the_scheme(world, api_as):
    response = api_as(None).get("/terminals", **{"X-Request-ID": "client-chosen-id-1"})
    body = assert_problem(response, 401, "not_authenticated")
    assert body["request_id"] == "client-chosen-id-1"
    assert response["WWW-Authenticate"] == 'Bearer realm="posfleet"'


def test_404_for_unknown_objects_and_routes(fleet, api_as):
    api = api_as("admin")
    for path in (
        "/terminals/SN-NOPE-0001",
        "/merchants/999999999999999",
        "/agents/AG-ZZ",
        "/nope",
        "/",
        "/terminal-models/nope",
    ):
        body = assert_problem(api.get(path), 404, "not_found")
        assert body["detail"] == "Not found."
    assert_problem(api.delete("/tokens/999"), 404, "not_found")
    body = assert_problem(api.delete("/tokens/abc"), 422, "validation_error")
    assert [e["field"] for e in body["errors"]] == ["token_id"]
    # Route misses answer the same to everyone, signed in or not.
    assert_problem(api_as(None).get("/no/such/route"), 404, "not_found")
    assert_problem(api_as(None).post("/no/such/route", {}), 404, "not_found")


def test_405_keeps_the_allow_header(fleet, api_as):
    response = api_as("admin").delete("/terminals")
    assert_problem(response, 405, "method_not_allowed")
    assert response["Allow"] == "GET"
    assert_problem(api_as("admin").get("/terminals/bulk-transitions"), 405, "method_not_allowed")


def test_409_transition_not_allowed_lists_what_is(fleet, api_as):
    api = api_as("admin")
    before = trace(SN_A)
    body = assert_problem(
        api.post(f"/terminals/{SN_A}/transitions", {"action": "ship"}), 409, "transition_not_allowed"
    )
    assert body["current_status"] == "active"  # the domain's `status` parameter, renamed: not the HTTP status
    assert body["allowed"] == ["suspend", "deactivate", "report_lost"]
    assert body["detail"] == "“ship” is not allowed while the terminal is active."
    assert trace(SN_A) == before


def test_422_for_bodies_that_do_not_parse_into_the_schema(fleet, api_as):
    api = api_as("admin")
    before = trace(SN_A)
    body = assert_problem(
        api.post(f"/terminals/{SN_A}/transitions", {"action": "explode", "note": 5}), 422, "validation_error"
    )
    assert [(e["field"], e["in"]) for e in body["errors"]] == [("action", "body"), ("note", "body")]
    assert body["detail"] == "The request is not valid: check action, note."
    assert trace(SN_A) == before


def test_422_from_the_domain_carries_its_parameters(fleet, api_as, clock):
    api = api_as("admin")
    before = trace(SN_A)
    body = assert_problem(
        api.post(
            f"/terminals/{SN_A}/transitions", {"action": "deactivate", "reason": "boredom"}, totp=clock.code()
        ),
        422,
        "validation_error",
    )
    assert body["field"] == "reason"
    assert body["allowed"] == [
        "cost",
        "technology_update",
        "competition",
        "business_change",
        "regulation",
        "device_fault",
        "financial_pressure",
        "other",
    ]
    body = assert_problem(
        api.post(
            f"/terminals/{SN_A}/transitions", {"action": "suspend", "reason": "risk", "params": {"x": "1"}}
        ),
        422,
        "validation_error",
    )
    assert (body["field"], body["detail"]) == ("params", "Unexpected parameters: x.")
    assert trace(SN_A).terminal == before.terminal


def test_400_for_a_body_that_is_not_json(fleet, api_as):
    before = trace(SN_A)
    response = api_as("admin").post(f"/terminals/{SN_A}/transitions", None, raw=b"{not json")
    assert_problem(response, 400, "bad_request")
    assert trace(SN_A) == before


def test_500_hides_the_error_and_gives_the_request_id(fleet, api_as, monkeypatch, caplog):
    from posfleet.api.routers import terminals as endpoint

    def broken(*args, **kwargs):
        raise RuntimeError("SELECT secret FROM somewhere; pf_leaked_token_value")

    monkeypatch.setattr(endpoint, "terminal_card", broken)
    response = api_as("admin").get(f"/terminals/{SN_A}")
    body = assert_problem(response, 500, "internal_error")
    assert "somewhere" not in response.content.decode()
    assert body["detail"] == "Something went wrong on our side. The request id identifies it in our logs."
    assert any("unhandled error in GET" in r.getMessage() for r in caplog.records)


def test_nul_characters_are_refused_everywhere_before_any_view(fleet, api_as):
    api = api_as("admin")
    before = trace(SN_A)
    cases = [
        (api.get("/terminals/SN%00A"), "path"),
        (api.get("/merchants/1%002/events"), "path"),
        (api.get("/terminals", {"q": "A\x00"}), "q"),
        (
            api.post(
                f"/terminals/{SN_A}/transitions", {"action": "suspend", "reason": "risk", "note": "a\x00"}
            ),
            "body",
        ),
        (
            api.post(
                "/terminals/bulk-transitions", {"sns": ["SN\x00"], "action": "suspend", "reason": "risk"}
            ),
            "body",
        ),
        (
            api.post(f"/terminals/{SN_A}/transitions", {"action": "deactivate"}, totp="12\x003456"),
            "X-Step-Up-Totp",
        ),
    ]
    for response, field in cases:
        body = assert_problem(response, 422, "validation_error")
        assert (body["field"], body["detail"]) == (field, "Text must not contain NUL characters.")
    assert trace(SN_A) == before


def test_a_body_that_is_not_an_object_is_422_everywhere(api_as):
    api = api_as("merchant_a")
    for raw in (b"true", b"[]", b'"x"', b"1", b"null"):
        for path in ("/notifications/read", "/webhook-endpoints", "/transactions", "/tokens"):
            assert_problem(api.post(path, None, raw=raw), 422, "validation_error")
    assert api.post("/notifications/read", None, raw=b"{not json").status_code == 400
    assert api.post("/notifications/read", {}).status_code == 422  # neither ids nor "all": true
    from posfleet.notifications.models import InboxItem

    assert not InboxItem.objects.filter(read_at__isnull=False).exists()
