"""The console's closure pages (注销): the lists, a case's page with its steps and actions, asking for a
closure in three screens (reason → quote → confirm with a code → the case), the warehouse's returns.

Who may see what: another tenant's case or terminal is 404; a role that may not act gets no button and
a 403 when it posts anyway; every refusal changes nothing (testing.refusals.assert_nothing_recorded).
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from posfleet.billing.services.settlement import settlement_run
from posfleet.closure.models import CaseStep, CaseTerminal, ClosureCase
from posfleet.closure.runner import advance
from posfleet.closure.services import closure_quote, closure_request
from posfleet.closure.tests.conftest import CONTRACT_START, TERMS, closable, person, request_and_approve
from posfleet.console.tests.helpers import PERSONAS, totp
from posfleet.fleet.models import Terminal
from posfleet.fleet.states import Status
from posfleet.platform.clock import now, today
from posfleet.platform.context import Actor
from posfleet.testing.money import signed_contract
from posfleet.testing.personas import make_terminal
from posfleet.testing.refusals import assert_nothing_recorded

SN = "CLS0001"
# Who sees merchant A's case (its agent A, not the sibling sub-agent A1, not B's side).
SEES_A = {"admin", "reviewer", "warehouse", "agent_a", "merchant_a"}
WAREHOUSE = {"admin", "warehouse"}


@pytest.fixture
def setup(clock, world):
    return closable(world)


def requested(setup, by: str = "merchant_a") -> ClosureCase:
    requester = person(setup.world, by)
    quote = closure_quote(actor=requester, sns=[SN]).quote
    return closure_request(actor=requester, sns=[SN], reason="shop_closed", quote_digest=quote.digest)


def waiting_for_return(setup, clock) -> ClosureCase:
    """An approved case whose device is expected back (the final settlement ran, the backup is made)."""
    case = request_and_approve(setup)
    clock.move_to(now() + timedelta(days=1))
    settlement_run(actor=Actor.job("settle"), business_date=today() - timedelta(days=1))
    advance(case.pk)
    case.refresh_from_db()
    assert CaseStep.objects.get(case=case, name="return").state == "waiting"
    return case


def ids_of(html: str, prefix: str) -> set[str]:
    return set(re.findall(rf'data-testid="{re.escape(prefix)}([^"]*)"', html))


def everything():
    """What a refusal must leave as it was: terminals, cases, their terminals and steps."""
    return (
        Terminal.objects.all(),
        ClosureCase.objects.all(),
        CaseTerminal.objects.all(),
        CaseStep.objects.all(),
    )


# -- who sees what --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PERSONAS)
def test_list_and_case_page_by_persona(setup, login, name):
    case = requested(setup)
    client = login(name)
    listed = client.get("/console/closures/?tab=open")
    assert listed.status_code == 200
    html = listed.content.decode()
    assert 'data-testid="closure-tabs"' in html
    assert (f'data-testid="closure-{case.number}"' in html) == (name in SEES_A)
    page = client.get(f"/console/closures/{case.number}/")
    if name in SEES_A:
        assert page.status_code == 200
        html = page.content.decode()
        assert 'data-testid="closure-next"' in html
        assert 'data-testid="closure-quote"' in html
        assert 'data-testid="step-contract"' in html
        # The actions offered follow the role: the requester's side withdraws, a reviewer (never the
        # requester) decides with a code; the warehouse only reads.
        assert ('data-testid="withdraw-form"' in html) == (name in {"admin", "agent_a", "merchant_a"})
        assert ('data-testid="approve-form"' in html) == (name in {"admin", "reviewer"})
        assert ('data-testid="reject-form"' in html) == (name in {"admin", "reviewer"})
        if name in {"admin", "reviewer"}:
            assert 'data-testid="step-up"' in html  # the code field: no fresh step-up in this session
    else:
        assert page.status_code == 404
        html = page.content.decode()
        for leak in ('data-testid="closure-', "Shop A", SN):
            assert leak not in html, leak


def test_nav_entry_for_every_role(setup, login):
    for name in PERSONAS:
        assert 'data-nav="closures"' in login(name).get("/console/").content.decode(), name


def test_list_tabs_and_columns(setup, login, clock):
    case = requested(setup)
    reviewer = login("reviewer")
    html = reviewer.get("/console/closures/").content.decode()  # a reviewer starts on "waiting for review"
    assert 'aria-current="page" href="?tab=review"' in html
    row = html.split(f'data-testid="closure-{case.number}"')[1].split("</tr>")[0]
    for shown in ("Shop A", SN, "shop closed", "staff (review)"):
        assert shown in row, shown
    assert "review-overdue-" not in row
    late = now() - timedelta(hours=1)
    ClosureCase.objects.filter(pk=case.pk).update(review_due_at=late)  # the review clock ran out
    html = reviewer.get("/console/closures/?tab=late").content.decode()
    assert f'data-testid="review-overdue-{case.number}"' in html
    for tab in ("open", "review", "late", "stuck", "done", "nonsense"):
        assert reviewer.get(f"/console/closures/?tab={tab}").status_code == 200
    assert case.number not in reviewer.get("/console/closures/?tab=done").content.decode()


@pytest.mark.parametrize("name", PERSONAS)
def test_returns_page_is_the_warehouses(setup, login, name):
    client = login(name)
    response = client.get("/console/closures/returns/")
    assert response.status_code == (200 if name in WAREHOUSE else 403)
    if name not in WAREHOUSE:
        assert 'data-testid="forbidden"' in response.content.decode()
        with assert_nothing_recorded(*everything()):
            assert client.post("/console/closures/returns/", {"sn": SN}).status_code == 403
    listed = client.get("/console/closures/").content.decode()
    assert ('data-testid="closure-returns-link"' in listed) == (name in WAREHOUSE)


@pytest.mark.parametrize("name", PERSONAS)
def test_close_action_on_the_terminal_page_and_the_first_screen(setup, login, name):
    client = login(name)
    terminal = client.get(f"/console/terminals/{SN}/")
    screen = client.get(f"/console/closures/new/?sn={SN}")
    offered = name in {"admin", "agent_a", "merchant_a"}
    if name in SEES_A:
        assert ('data-testid="terminal-close"' in terminal.content.decode()) == offered
    else:
        assert terminal.status_code == 404
    expected = 200 if offered else 403 if name in {"reviewer", "warehouse"} else 404
    assert screen.status_code == expected
    if expected == 200:
        html = screen.content.decode()
        assert 'data-testid="closure-reason-form"' in html
        # provider-initiated is the provider's reason: only the admin is offered it
        assert ('value="provider_initiated"' in html) == (name == "admin")


def test_case_actions_refused_change_nothing(setup, login):
    case = requested(setup)
    # the warehouse and the merchant may not decide; merchant B and agent B do not see the case
    for name, action, expected in (
        ("warehouse", "approve", 403),
        ("merchant_a", "approve", 403),
        ("warehouse", "withdraw", 403),
        ("reviewer", "withdraw", 403),
        ("merchant_b", "withdraw", 404),
        ("agent_b", "approve", 404),
        ("agent_a1", "reject", 404),
    ):
        with assert_nothing_recorded(*everything()):
            response = login(name).post(
                f"/console/closures/{case.number}/{action}/", {"note": "no", "totp": totp()}
            )
        assert response.status_code == expected, (name, action)
    # a reviewer rejecting without a note: said on the form, nothing changes
    with assert_nothing_recorded(*everything()):
        response = login("reviewer").post(f"/console/closures/{case.number}/reject/", {"note": ""})
    assert response.status_code == 200
    assert "invalid-feedback" in response.content.decode()
    # a tracking number while the device is not expected: the service's words, nothing changes
    with assert_nothing_recorded(*everything()):
        response = login("merchant_a").post(
            f"/console/closures/{case.number}/shipment/", {"tracking_no": "SF1234567890"}
        )
    assert "The device is not expected back yet." in response.content.decode()
    assert login("admin").post(f"/console/closures/{case.number}/explode/").status_code == 404


def test_reviewer_approves_with_a_code_and_rejects_with_a_note(setup, login):
    case = requested(setup)
    reviewer = login("reviewer")
    # without a code: asked for it, nothing changes
    with assert_nothing_recorded(*everything()):
        response = reviewer.post(f"/console/closures/{case.number}/approve/", {"note": ""})
    assert response.status_code == 200
    assert 'data-testid="step-up"' in response.content.decode()
    response = reviewer.post(f"/console/closures/{case.number}/approve/", {"totp": totp()})
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.status == "running"
    html = reviewer.get(response["Location"]).content.decode()
    assert "The closure is approved" in html
    assert 'data-testid="closure-progress"' in html
    assert 'data-testid="step-state-contract"' in html

    other = make_terminal(setup.world, "CLS0002", Status.ACTIVE)
    merchant = person(setup.world, "merchant_a")
    digest = closure_quote(actor=merchant, sns=[other.sn]).quote.digest
    second = closure_request(actor=merchant, sns=[other.sn], reason="cost", quote_digest=digest)
    response = reviewer.post(f"/console/closures/{second.number}/reject/", {"note": "the contract says so"})
    assert response.status_code == 302
    second.refresh_from_db()
    assert (second.status, second.review_note) == ("rejected", "the contract says so")
    assert Terminal.objects.get(sn=other.sn).status == "active"


def test_requester_withdraws(setup, login):
    case = requested(setup)
    url = f"/console/closures/{case.number}/withdraw/"
    response = login("merchant_a").post(url, {"note": "changed my mind"})
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.status == "withdrawn"
    assert Terminal.objects.get(sn=SN).status == "active"
    html = login("merchant_a").get(f"/console/closures/{case.number}/").content.decode()
    assert 'data-testid="withdraw-form"' not in html
    assert "nothing was closed" in html


# -- the merchant's request in three screens -----------------------------------------------------------


def test_merchant_closes_a_terminal_in_three_screens(setup, login):
    client = login("merchant_a")
    terminal_page = client.get(f"/console/terminals/{SN}/").content.decode()
    assert f'href="/console/closures/new/?sn={SN}"' in terminal_page
    # screen 1: the terminal, the reason, the note
    first = client.get(f"/console/closures/new/?sn={SN}").content.decode()
    assert 'data-testid="chosen-CLS0001"' in first
    # screen 2: the quote, every line and why, and the code
    second = client.post("/console/closures/new/", {"step": "quote", "sn": SN, "reason": "shop_closed"})
    assert second.status_code == 200
    html = second.content.decode()
    lines = {"penalty", "fees_due", "recovery_fee", "damage-B", "damage-C", "deposit"}
    assert ids_of(html, "quote-line-") >= lines
    # 299.00 deposit − 99.00 fee due − 50.00 penalty (7 of the minimum 12 months served by January 2027)
    assert 'data-testid="quote-refund">¥150.00<' in html
    assert "Early-termination penalty" in html
    assert 'data-testid="step-up"' in html
    digest = re.search(r'name="digest" value="([0-9a-f]{64})"', html).group(1)
    assert not ClosureCase.objects.exists()  # a quote writes nothing
    # confirm with the code: screen 3 is the case's page
    confirmed = client.post(
        "/console/closures/new/",
        {"step": "confirm", "sn": SN, "reason": "shop_closed", "note": "", "digest": digest, "totp": totp()},
    )
    assert confirmed.status_code == 302
    case = ClosureCase.objects.get()
    assert confirmed["Location"] == f"/console/closures/{case.number}/"
    assert (case.status, case.reason, case.quote_digest) == ("requested", "shop_closed", digest)
    assert Terminal.objects.get(sn=SN).status == "deactivated"
    page = client.get(confirmed["Location"]).content.decode()
    assert f"Closure case {case.number} is open" in page
    assert "Your request is being reviewed" in page  # what happens next, in plain words
    assert 'data-testid="withdraw-form"' in page
    # the terminal page now leads to the case instead of offering to close again
    terminal_page = client.get(f"/console/terminals/{SN}/").content.decode()
    assert f'href="/console/closures/{case.number}/"' in terminal_page
    assert 'data-testid="terminal-close"' not in terminal_page
    again = client.get(f"/console/closures/new/?sn={SN}").content.decode()
    assert f"already in closure case {case.number}" in again


def test_a_stale_quote_is_shown_again_before_any_code_is_spent(setup, login):
    client = login("merchant_a")
    code = totp()
    form = {"step": "confirm", "sn": SN, "reason": "cost", "note": "", "digest": "0" * 64, "totp": code}
    with assert_nothing_recorded(*everything()):  # not even a step-up event: the code is not used
        stale = client.post("/console/closures/new/", form)
    assert stale.status_code == 200
    html = stale.content.decode()
    assert 'data-testid="closure-quote-stale"' in html
    assert 'data-testid="closure-quote"' in html
    digest = re.search(r'name="digest" value="([0-9a-f]{64})"', html).group(1)
    assert digest == closure_quote(actor=person(setup.world, "merchant_a"), sns=[SN]).quote.digest
    confirmed = client.post("/console/closures/new/", {**form, "digest": digest})  # the same code
    assert confirmed.status_code == 302
    assert ClosureCase.objects.get().reason == "cost"


def test_refused_requests_record_nothing(setup, login, world):
    client = login("merchant_a")
    digest = closure_quote(actor=person(world, "merchant_a"), sns=[SN]).quote.digest
    base = {"step": "confirm", "sn": SN, "note": "", "digest": digest}
    cases = [
        ({**base, "reason": "provider_initiated", "totp": totp()}, "Select a valid choice"),
        ({**base, "reason": "other", "totp": totp()}, "Say in the note what the other reason is."),
        ({**base, "reason": "cost", "totp": ""}, "This field is required."),
    ]
    for form, message in cases:
        with assert_nothing_recorded(*everything()):
            response = client.post("/console/closures/new/", form)
        assert response.status_code == 200
        assert message in response.content.decode(), message
    # a wrong code: said on the field; only the failed verification is recorded
    with assert_nothing_recorded(*everything(), audit=["mfa.step_up_failed"]):
        response = client.post("/console/closures/new/", {**base, "reason": "cost", "totp": "000000"})
    assert 'data-testid="step-up"' in response.content.decode()
    # another merchant's terminal is not there; a reviewer may not ask
    with assert_nothing_recorded(*everything()):
        outsider = login("merchant_b").post("/console/closures/new/", {**base, "reason": "cost"})
        reviewer = login("reviewer").post("/console/closures/new/", {**base, "reason": "cost"})
    assert (outsider.status_code, reviewer.status_code) == (404, 403)


def test_staff_close_several_terminals_of_one_merchant_in_one_case(setup, login, world):
    second = make_terminal(world, "CLS0002", Status.SUSPENDED)
    signed_contract(second, starts_on=CONTRACT_START, **TERMS)
    other = make_terminal(world, "CLSB001", Status.ACTIVE, merchant=world.merchant_b)
    admin = login("admin")
    listed = admin.get("/console/terminals/").content.decode()
    assert 'data-testid="bulk-close"' in listed
    assert f'data-testid="row-close-{SN}"' in listed
    # two merchants at once: refused on the first screen, in words
    mixed = admin.get(f"/console/closures/new/?sn={SN}&sn={other.sn}").content.decode()
    assert "Close the terminals of one merchant at a time." in mixed
    assert 'data-testid="closure-see-quote" disabled' in mixed
    chosen = {"sn": [SN, "CLS0002"], "reason": "provider_initiated", "note": "risk"}
    quote = admin.post("/console/closures/new/", {"step": "quote", **chosen}).content.decode()
    assert ids_of(quote, "chosen-") == {SN, "CLS0002"}
    digest = re.search(r'name="digest" value="([0-9a-f]{64})"', quote).group(1)
    confirmed = admin.post(
        "/console/closures/new/",
        {
            "step": "confirm",
            "sn": [SN, "CLS0002"],
            "reason": "provider_initiated",
            "note": "risk",
            "digest": digest,
            "totp": totp(),
        },
    )
    assert confirmed.status_code == 302
    case = ClosureCase.objects.get()
    closing = CaseTerminal.objects.filter(case=case).order_by("terminal__sn")
    assert list(closing.values_list("terminal__sn", flat=True)) == [SN, "CLS0002"]
    html = admin.get(confirmed["Location"]).content.decode()
    assert ids_of(html, "closure-terminal-") == {SN, "CLS0002"}
    # the admin asked: maker-checker leaves the decision to someone else
    assert 'data-testid="approve-form"' not in html
    assert 'data-testid="approve-form"' in login("reviewer").get(confirmed["Location"]).content.decode()


# -- a running case and the warehouse -------------------------------------------------------------------


def test_the_case_page_shows_the_steps_and_the_return(setup, login, clock):
    case = waiting_for_return(setup, clock)
    merchant = login("merchant_a")
    html = merchant.get(f"/console/closures/{case.number}/").content.decode()
    assert "Send the device back to the address shown before the deadline." in html
    assert 'data-testid="closure-return"' in html
    assert f"R-{case.number}" in html
    assert 'data-state="waiting"' in html
    assert 'data-testid="step-waiting-return"' in html
    assert "Waiting for the merchant" in html
    steps = dict(CaseStep.objects.filter(case=case).values_list("name", "state"))
    finished = sum(1 for s in steps.values() if s in ("done", "skipped"))
    assert f'aria-valuenow="{finished}"' in html
    # the evidence: the contract's journals, the backup to download
    assert f"closure_penalty:{setup.contract.pk}" in html
    backup = CaseStep.objects.get(case=case, name="backup").evidence["backup"]
    assert f'href="/console/backups/{backup}/download/"' in html
    # the tracking number, then the warehouse's list shows it
    with assert_nothing_recorded(*everything()):
        bad = merchant.post(f"/console/closures/{case.number}/shipment/", {"tracking_no": "x"})
    assert "Give the tracking number as printed" in bad.content.decode()
    shipped = merchant.post(f"/console/closures/{case.number}/shipment/", {"tracking_no": "SF1234567890"})
    assert shipped.status_code == 302
    returns = login("warehouse").get("/console/closures/returns/").content.decode()
    row = returns.split(f'data-testid="expected-{SN}"')[1].split("</tr>")[0]
    assert "SF1234567890" in row
    assert case.number in row
    assert "expected-overdue-" not in row
    clock.move_to(now() + timedelta(days=60))
    returns = login("warehouse").get("/console/closures/returns/").content.decode()
    assert f'data-testid="expected-overdue-{SN}"' in returns


def test_warehouse_receives_and_inspects(setup, login, clock):
    case = waiting_for_return(setup, clock)
    warehouse = login("warehouse")
    # an SN no open case expects: said on the form, nothing changes
    with assert_nothing_recorded(*everything()):
        response = warehouse.post("/console/closures/returns/", {"sn": "NOPE0001"})
    assert "No open closure case expects this device." in response.content.decode()
    received = warehouse.post("/console/closures/returns/", {"sn": SN.lower()})
    assert received.status_code == 302
    assert received["Location"] == f"/console/closures/returns/{SN}/"
    assert CaseTerminal.objects.get(case=case).received_at is not None
    form = warehouse.get(received["Location"]).content.decode()
    assert "is received for case" in form
    assert 'data-testid="inspect-form"' in form
    assert 'data-testid="inspect-prices"' in form
    # the same device again: refused in words
    with assert_nothing_recorded(*everything()):
        again = warehouse.post("/console/closures/returns/", {"sn": SN})
    assert "This device was received already." in again.content.decode()
    # grade C without a description: refused, nothing changes
    with assert_nothing_recorded(*everything()):
        refused = warehouse.post(received["Location"], {"grade": "C", "disposal": "scrap"})
    assert "Describe the damage in the notes." in refused.content.decode()
    done = warehouse.post(
        received["Location"],
        {"grade": "B", "human_damage": "on", "note": "cracked screen", "disposal": "refurbish"},
    )
    assert done.status_code == 302
    entry = CaseTerminal.objects.get(case=case)
    graded = (entry.grade, entry.human_damage, entry.damage_fen, entry.disposal)
    assert graded == ("B", True, 5_000, "refurbish")
    listed = warehouse.get(done["Location"]).content.decode()
    assert "is graded B" in listed
    assert f'data-testid="to-inspect-{SN}"' not in listed
    # the runner finishes the case: every step done, the certificate, the refund with its journal
    advance(case.pk)
    case.refresh_from_db()
    assert case.status == "completed"
    page = login("merchant_a").get(f"/console/closures/{case.number}/").content.decode()
    assert f'data-testid="closure-certificate">{case.certificate_code}<' in page
    assert 'aria-valuenow="9"' in page
    assert ids_of(page, "step-evidence-") >= {"contract", "settle", "backup", "return", "inspect", "refund"}
    assert "deposit_release:" in page
    assert "Your terminal is closed." in page
    # others may not open the inspection page at all
    assert login("merchant_a").get(received["Location"]).status_code == 403
    assert warehouse.get("/console/closures/returns/NOPE0001/").status_code == 404


def test_a_case_page_in_chinese(setup, login, world):
    case = requested(setup)
    user = world.user("merchant_a")
    user.language = "zh-hans"
    user.save()
    html = login("merchant_a").get(f"/console/closures/{case.number}/").content.decode()
    assert '<html lang="zh-hans">' in html
    for label in ("待审核", "停业", "协议已终止", "押金余额"):
        assert label in html, label


def test_a_step_needing_attention_is_started_again_by_an_admin(setup, login, clock):
    case = waiting_for_return(setup, clock)
    CaseStep.objects.filter(case=case, name="unbind").update(
        state="failed", message="The payment channel refused to unbind: alipay."
    )  # as the runner leaves a refusal
    html = login("reviewer").get(f"/console/closures/{case.number}/").content.decode()
    assert 'data-testid="step-message-unbind"' in html
    assert "step-retry-" not in html  # only the provider's admins start a step again
    with assert_nothing_recorded(*everything()):
        refused = login("reviewer").post(f"/console/closures/{case.number}/retry/", {"step": "unbind"})
    assert refused.status_code == 403
    stuck = login("admin").get("/console/closures/?tab=stuck").content.decode()
    assert f'data-testid="closure-{case.number}"' in stuck
    admin = login("admin")
    page = admin.get(f"/console/closures/{case.number}/").content.decode()
    assert 'data-testid="step-retry-unbind"' in page
    with assert_nothing_recorded(*everything()):  # a step that does not need attention: refused in words
        refused = admin.post(f"/console/closures/{case.number}/retry/", {"step": "contract"})
    assert "Only a step that needs attention is started again." in refused.content.decode()
    assert admin.post(f"/console/closures/{case.number}/retry/", {"step": "unbind"}).status_code == 302
    assert CaseStep.objects.get(case=case, name="unbind").state in ("pending", "done", "skipped")


def test_the_running_case_refreshes_its_steps_alone(setup, login, clock):
    case = waiting_for_return(setup, clock)
    client = login("merchant_a")
    page = client.get(f"/console/closures/{case.number}/").content.decode()
    assert 'hx-trigger="every 15s"' in page
    partial = client.get(f"/console/closures/{case.number}/", HTTP_HX_REQUEST="true").content.decode()
    assert partial.lstrip().startswith("<section")
    assert 'data-testid="closure-steps"' in partial
    assert "<html" not in partial
