"""The closure certificate (注销证明) and the itemised closure statement, from a real journey: the
merchant sells on the day it asks, the final settlement keeps back the service fee the closure charged
(so the deposit does not pay it), the device comes back graded B with damage a person caused. The
documents in English and Chinese, the statement's differences against the steps' evidence, the PDFs,
the public verification page (its facts only, 404 for unknown codes, 429 for guessing) and the API
downloads (another tenant's case is 404)."""

from __future__ import annotations

import io
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pypdf
import pytest
import time_machine
from django.core.cache import cache
from django.test import Client
from django.utils import translation

from posfleet.billing.services.settlement import settlement_run
from posfleet.billing.services.transactions import transactions_ingest
from posfleet.billing.tests.test_transactions import txn
from posfleet.closure import backup as backups
from posfleet.closure import documents
from posfleet.closure.models import CaseStep, ClosureCase
from posfleet.closure.runner import advance
from posfleet.closure.services import closure_inspect, closure_quote, closure_receive, closure_request
from posfleet.closure.tests.conftest import Setup, closable, person, request_and_approve
from posfleet.closure.web import GUESSES_PER_MINUTE
from posfleet.platform.context import Actor
from posfleet.platform.errors import NotFound
from posfleet.testing.sessions import sign_in

SH = ZoneInfo("Asia/Shanghai")
SALE_FEN, SALE_FEE_FEN = 100_000, 600  # a credit sale of ¥1,000.00 at 0.60 %
LEGAL_NAME = "Shop A Ltd"  # merchant A's legal name: never on the certificate


def at(day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=SH)


@pytest.fixture(autouse=True)
def quick_statements(monkeypatch):
    """The data backup's monthly statements as a few bytes (this file is about the closure's PDFs)."""
    monkeypatch.setattr(
        backups, "statement_pdf", lambda merchant, month: f"%PDF {merchant.mid} {month}".encode()
    )


@pytest.fixture(autouse=True)
def fresh_throttle():
    cache.clear()
    yield
    cache.clear()


def step(case: ClosureCase, name: str) -> CaseStep:
    return CaseStep.objects.get(case=case, name=name)


def sold_and_asked(world, clock) -> tuple[Setup, ClosureCase, str]:
    """Merchant A's terminal sells ¥1,000.00 at 09:30, and the closure is asked for and approved at 10:00."""
    setup = closable(world)
    tid = setup.terminal.tid or ""
    results = transactions_ingest(
        actor=Actor.job("ingest"),
        items=[txn(setup.terminal, 1, SALE_FEN, day=date(2026, 12, 6), occurred_at=at(6, 9, 30))],
    )
    assert all(r.ok for r in results)
    clock.move_to(at(6, 10))
    return setup, request_and_approve(setup), tid


def settle(clock) -> None:
    clock.move_to(at(7, 3))  # the T+1 run of the 6th
    settlement_run(actor=Actor.job("settle"), business_date=date(2026, 12, 6))


@pytest.fixture
def completed(world):
    with time_machine.travel(at(6, 9), tick=False) as clock:
        setup, case, tid = sold_and_asked(world, clock)
        settle(clock)
        advance(case.pk)
        clock.move_to(at(9))
        warehouse = person(world, "warehouse")
        closure_receive(actor=warehouse, sn=setup.terminal.sn)
        closure_inspect(
            actor=warehouse,
            sn=setup.terminal.sn,
            grade="B",
            human_damage=True,
            note="cracked screen",
            disposal="refurbish",
        )
        advance(case.pk)
    case.refresh_from_db()
    assert case.status == "completed"
    return setup, case, tid


# -- the certificate -------------------------------------------------------------------------------------


def test_the_certificate_states_what_was_done(completed) -> None:
    setup, case, tid = completed
    with translation.override("en"):
        cert = documents.certificate(
            case, verify_url=f"https://posfleet.test/verify/{case.certificate_code}/"
        )
        html = documents.render_certificate(cert)
    assert (cert.number, cert.code) == (case.number, case.certificate_code)
    assert (cert.provider_name, cert.merchant_mid, cert.merchant_name) == (
        "Test Provider",
        "100000000000001",
        "Shop A",
    )
    assert cert.reason_label == "shop closed"
    assert (cert.requested_at, cert.approved_at, cert.completed_at) == (at(6), at(6), at(9))
    assert cert.refund_fen == 18_900
    (terminal,) = cert.terminals
    # The device was refurbished (its TID cleared): the certificate keeps the TID it had in the case.
    assert (terminal.sn, terminal.tid, terminal.model) == (setup.terminal.sn, tid, "PAX A920")
    assert tid
    assert (terminal.channels, terminal.channels_text) == ([], "No payment channel was bound")
    assert terminal.wipe == "not_applicable"
    assert terminal.wipe_text == "No remote wipe: the device had no remote connection"
    assert (terminal.returned, terminal.received_on, terminal.grade) == (True, date(2026, 12, 9), "B")
    assert terminal.return_text == "Returned on 9 Dec 2026, graded B — signs of wear"
    assert '<html lang="en">' in html
    for fact in (
        "Closure certificate",
        f"Certificate no. {case.number}",
        "Test Provider",
        "Shop A",
        "100000000000001",
        setup.terminal.sn,
        tid,
        "PAX A920",
        "Shop closed",
        "6 Dec 2026",
        "9 Dec 2026",
        "¥189.00",
        case.certificate_code,
        f"https://posfleet.test/verify/{case.certificate_code}/",
    ):
        assert fact in html, fact
    assert LEGAL_NAME not in html  # no personal data: the shop's name and MID only
    assert "http://" not in html


def test_the_certificate_in_chinese(completed) -> None:
    _setup, case, _tid = completed
    with translation.override("zh-hans"):
        html = documents.render_certificate(documents.certificate(case))
        expected = [
            translation.gettext("Closure certificate"),
            translation.gettext("Verification code"),
            translation.gettext("Deposit refunded"),
            translation.gettext("shop closed").capitalize(),
            translation.gettext("Returned on %(day)s, graded %(grade)s")
            % {"day": "2026年12月9日", "grade": translation.gettext("B — signs of wear")},
        ]
    assert '<html lang="zh-hans">' in html
    assert "font-family: 'Noto Sans CJK SC', 'WenQuanYi Micro Hei', sans-serif" in html
    for words in expected:
        assert words in html, words
    assert "商户号" in html  # "MID" (already translated)


def test_no_certificate_before_completion_and_a_provisional_statement(world) -> None:
    with time_machine.travel(at(6, 9), tick=False) as clock:
        _setup, case, _tid = sold_and_asked(world, clock)
        with pytest.raises(NotFound):
            documents.certificate(case)
        with translation.override("en"):
            doc = documents.statement(case)
            html = documents.render_statement(doc)
    assert doc.provisional
    lines = {line.code: line for line in doc.lines}
    assert (lines["unsettled_sales"].quoted_fen, lines["unsettled_sales"].actual_fen) == (99_400, None)
    assert lines["unsettled_sales"].why == "waiting for the final settlement (T+1)"
    assert (lines["penalty"].actual_fen, lines["fees_due"].actual_fen) == (6_000, 9_900)  # the contract ended
    assert doc.total("refund").actual_fen is None
    assert doc.refund_fen is None
    assert 'data-testid="cs-provisional"' in html
    assert "Provisional: the closure is still under way (closing)." in html


def test_no_statement_for_a_case_not_approved(world) -> None:
    with time_machine.travel(at(6), tick=False):
        setup = closable(world)
        requester = person(world, "merchant_a")
        quote = closure_quote(actor=requester, sns=[setup.terminal.sn]).quote
        case = closure_request(
            actor=requester, sns=[setup.terminal.sn], reason="cost", quote_digest=quote.digest
        )
    with pytest.raises(NotFound):
        documents.statement(case)
    with pytest.raises(NotFound):
        documents.certificate(case)


# -- the statement ---------------------------------------------------------------------------------------


def test_the_statement_sets_each_quoted_line_beside_what_happened(completed) -> None:
    setup, case, _tid = completed
    sn = setup.terminal.sn
    with translation.override("en"):
        doc = documents.statement(case)
        html = documents.render_statement(doc)
    assert not doc.provisional
    rows = [(line.code, line.terminal, line.quoted_fen, line.actual_fen, line.why) for line in doc.lines]
    assert rows == [
        (
            "unsettled_sales",
            "",
            SALE_FEN - SALE_FEE_FEN,
            SALE_FEN - SALE_FEE_FEN - 9_900,
            "¥99.00 of fees were deducted from the final settlement instead of the deposit",
        ),
        ("fees_due", sn, 9_900, 9_900, ""),
        ("penalty", sn, 6_000, 6_000, ""),
        ("recovery_fee", sn, 5_000, 0, "not charged: the device was returned on 9 Dec 2026"),
        ("damage", sn, 5_000, 5_000, "damage charged: grade B, caused by a person"),
        ("damage", sn, 30_000, 0, "not charged: the device was graded B"),
        ("deposit", sn, 29_900, 29_900, "released: ¥189.00 refunded, ¥110.00 kept for what was owed"),
    ]
    assert [line.difference_fen for line in doc.lines] == [-9_900, 0, 0, -5_000, 0, -30_000, 0]
    totals = {t.code: (t.quoted_fen, t.actual_fen, t.difference_fen, t.why) for t in doc.totals}
    fees_moved = "fees were deducted from the final settlement instead of the deposit"
    damage = "damage charged: grade B, caused by a person"
    assert totals == {
        # fee 99.00 + penalty 60.00 quoted; the damage 50.00 came on top
        "charged": (15_900, 20_900, 5_000, damage),
        "deducted": (0, 9_900, 9_900, fees_moved),
        "from_deposit": (15_900, 11_000, -4_900, f"{fees_moved}; {damage}"),
        "refund": (14_000, 18_900, 4_900, f"{fees_moved}; {damage}"),
        "still_owed": (0, 0, 0, ""),
    }
    assert (doc.refund_fen, doc.still_owed_fen) == (18_900, 0)
    assert (
        doc.outcome_text == "¥189.00 of the deposit was refunded to your settlement account; nothing is owed."
    )
    assert [(b["net_fen"], b["deducted_fen"], b["payout_fen"]) for b in doc.settlements] == [
        (99_400, 9_900, 89_500)
    ]

    # The same figures as the steps' evidence (and so the journals the steps posted).
    settled = step(case, "settle").evidence
    refunded = step(case, "refund").evidence
    ended = step(case, "contract").evidence
    assert doc.lines[0].actual_fen == settled["paid_fen"]
    assert doc.total("refund").actual_fen == refunded["refund_fen"]
    assert doc.total("from_deposit").actual_fen == refunded["paid_owed_fen"]
    assert doc.total("still_owed").actual_fen == refunded["still_owed_fen"]
    assert doc.lines[2].actual_fen == ended["penalty_fen"]
    assert doc.lines[4].actual_fen == step(case, "inspect").evidence["inspected"][sn]["damage_fen"]
    assert doc.total("deducted").actual_fen + refunded["paid_owed_fen"] == doc.total("charged").actual_fen

    assert 'data-testid="cs-provisional"' not in html
    for text in ("Closure statement", case.number, "¥895.00", "-¥99.00", "+¥49.00", "¥189.00", "¥209.00"):
        assert text in html, text


def test_the_statement_in_chinese_says_the_same(completed) -> None:
    _setup, case, _tid = completed
    with translation.override("zh-hans"):
        doc = documents.statement(case)
        html = documents.render_statement(doc)
        expected = [
            translation.gettext("Closure statement"),
            translation.gettext("damage charged: grade %(grade)s, caused by a person") % {"grade": "B"},
            translation.gettext("Deposit refunded to you"),
            translation.gettext("Deposit held"),
        ]
    assert '<html lang="zh-hans">' in html
    assert [line.actual_fen for line in doc.lines] == [89_500, 9_900, 6_000, 0, 5_000, 0, 29_900]
    for words in expected:
        assert words.capitalize() in html or words in html, words


def test_a_device_not_returned_is_charged_the_recovery_fee(world) -> None:
    with time_machine.travel(at(6, 9), tick=False) as clock:
        setup, case, _tid = sold_and_asked(world, clock)
        settle(clock)
        advance(case.pk)
        case.refresh_from_db()
        assert case.return_due_on == date(2026, 12, 21)
        clock.move_to(datetime(2026, 12, 22, 1, tzinfo=SH))  # past the deadline: nothing came back
        advance(case.pk)
        case.refresh_from_db()
    assert case.status == "completed"
    sn = setup.terminal.sn
    with translation.override("en"):
        doc = documents.statement(case)
        cert = documents.certificate(case)
    lines = {(line.code, line.quoted_fen): line for line in doc.lines}
    recovery = lines[("recovery_fee", 5_000)]
    assert (recovery.actual_fen, recovery.why) == (5_000, "recovery fee: device not returned by 21 Dec 2026")
    assert lines[("damage", 5_000)].actual_fen == 0
    assert lines[("damage", 5_000)].why == "not charged: the device was not returned, so it was not inspected"
    # 299.00 − 60.00 penalty − 50.00 recovery fee (the 99.00 fee came out of the settlement) = 189.00
    assert (doc.total("charged").actual_fen, doc.total("refund").actual_fen) == (20_900, 18_900)
    assert doc.total("charged").why == "recovery fee: device not returned by 21 Dec 2026"
    (terminal,) = cert.terminals
    assert (terminal.sn, terminal.returned, terminal.return_text) == (
        sn,
        False,
        "Not returned by 21 Dec 2026",
    )


# -- the PDFs --------------------------------------------------------------------------------------------


def pdf_text(content: bytes) -> str:
    assert content.startswith(b"%PDF-")
    reader = pypdf.PdfReader(io.BytesIO(content))
    assert reader.pages[0].mediabox.width == pytest.approx(595.28, abs=0.5)  # A4
    return "".join(page.extract_text() for page in reader.pages)


@pytest.mark.pdf
def test_the_certificate_and_statement_as_pdf_in_english(completed) -> None:
    _setup, case, tid = completed
    with translation.override("en"):
        cert = documents.certificate_pdf(documents.certificate(case, verify_url="https://posfleet.test/v/"))
        statement = documents.statement_pdf(documents.statement(case))
    text = pdf_text(cert)
    for fact in (
        "Closure certificate",
        case.number,
        case.certificate_code,
        "100000000000001",
        tid,
        "¥189.00",
    ):
        assert fact in text, fact
    text = pdf_text(statement)
    for fact in ("Closure statement", case.number, "¥994.00", "¥895.00", "¥189.00", "¥140.00", "grade B"):
        assert fact in text, fact


@pytest.mark.pdf
def test_the_certificate_as_pdf_in_chinese(completed) -> None:
    _setup, case, _tid = completed
    with translation.override("zh-hans"):
        content = documents.certificate_pdf(documents.certificate(case))
        title = translation.gettext("Closure certificate")
    text = pdf_text(content)
    for fact in (title, "商户号", case.certificate_code, "¥189.00"):
        assert fact in text, fact


# -- the public verification page ----------------------------------------------------------------------


def test_the_public_page_shows_the_certificates_facts_only(completed) -> None:
    setup, case, tid = completed
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    response = client.get(f"/verify/{case.certificate_code}/")
    assert response.status_code == 200
    page = response.content.decode()
    for fact in (
        "This closure certificate is genuine",
        case.number,
        case.certificate_code,
        "Shop A",
        "100000000000001",
        setup.terminal.sn,
        tid,
        "Shop closed",
        "¥189.00",  # the deposit refunded: the one amount the certificate prints
        f"http://testserver/verify/{case.certificate_code}/",
    ):
        assert fact in page, fact
    # Nothing the certificate does not print: no other amount, no personal data, no statement.
    for hidden in (
        LEGAL_NAME,
        "¥60.00",
        "¥99.00",
        "¥895.00",
        "¥299.00",
        "cracked screen",
        "Closure statement",
    ):
        assert hidden not in page, hidden
    assert response["X-Robots-Tag"] == "noindex"
    # The code may be typed in lower case, with spaces or dashes.
    typed = f"{case.certificate_code[:4].lower()}-{case.certificate_code[4:]}"
    assert client.get("/verify/", {"code": typed})["Location"] == f"/verify/{case.certificate_code}/"
    assert client.get("/verify/").status_code == 200


def test_an_unknown_code_is_a_plain_not_found(completed) -> None:
    _setup, case, _tid = completed
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    other = "".join("Z" if c != "Z" else "Y" for c in case.certificate_code)
    for code in (other, "NOT-A-CODE", case.number):
        response = client.get(f"/verify/{code}/")
        assert response.status_code == 404, code
        page = response.content.decode()
        assert "No closure certificate has this verification code." in page
        for hidden in (case.number, "Shop A", "100000000000001"):
            assert hidden not in page
    form = client.get("/verify/", {"code": "O0I1"})
    assert form.status_code == 200
    assert 'data-testid="verify-invalid"' in form.content.decode()


def test_a_running_case_cannot_be_verified(world) -> None:
    with time_machine.travel(at(6, 9), tick=False) as clock:
        _setup, case, _tid = sold_and_asked(world, clock)
    ClosureCase.objects.filter(pk=case.pk).update(certificate_code="ABCDEFGHJKLM")
    assert Client().get("/verify/ABCDEFGHJKLM/").status_code == 404


def test_guessing_is_slowed_down(completed) -> None:
    _setup, case, _tid = completed
    client = Client(HTTP_ACCEPT_LANGUAGE="en", REMOTE_ADDR="203.0.113.7")
    for i in range(GUESSES_PER_MINUTE):
        assert client.get(f"/verify/ABCDEFGHJK{i:02d}/").status_code == 404
    refused = client.get(f"/verify/{case.certificate_code}/")
    assert refused.status_code == 429
    assert refused["Retry-After"] == "60"
    assert case.number not in refused.content.decode()
    # Another address is not slowed down by this one's guesses.
    assert Client(REMOTE_ADDR="203.0.113.8").get(f"/verify/{case.certificate_code}/").status_code == 200


# -- the API's downloads ---------------------------------------------------------------------------------


def test_the_merchant_downloads_its_documents_and_others_get_404(world, completed) -> None:
    _setup, case, _tid = completed
    merchant = sign_in(Client(), world.user("merchant_a"))
    html = merchant.get(f"/api/v1/closures/{case.number}/certificate.html")
    assert html.status_code == 200, html.content
    assert html["Content-Type"] == "text/html; charset=utf-8"
    assert "no-store" in html["Cache-Control"]
    assert case.certificate_code in html.content.decode()
    assert f"http://testserver/verify/{case.certificate_code}/" in html.content.decode()
    statement = merchant.get(f"/api/v1/closures/{case.number}/statement.html")
    assert statement.status_code == 200
    assert "¥189.00" in statement.content.decode()
    for name in ("merchant_b", "agent_b"):
        other = sign_in(Client(), world.user(name))
        for doc in ("certificate.pdf", "certificate.html", "statement.pdf", "statement.html"):
            response = other.get(f"/api/v1/closures/{case.number}/{doc}")
            assert response.status_code == 404, (name, doc)
            assert response.json()["code"] == "not_found"
    assert Client().get(f"/api/v1/closures/{case.number}/certificate.pdf").status_code == 401


def test_a_running_case_has_a_statement_and_no_certificate(world) -> None:
    with time_machine.travel(at(6, 9), tick=False) as clock:
        _setup, case, _tid = sold_and_asked(world, clock)
    agent = sign_in(Client(), world.user("agent_a"))
    statement = agent.get(f"/api/v1/closures/{case.number}/statement.html")
    assert statement.status_code == 200
    assert 'data-testid="cs-provisional"' in statement.content.decode()
    assert agent.get(f"/api/v1/closures/{case.number}/certificate.html").status_code == 404


@pytest.mark.pdf
def test_the_certificate_pdf_download(world, completed) -> None:
    _setup, case, _tid = completed
    merchant = sign_in(Client(), world.user("merchant_a"))
    response = merchant.get(f"/api/v1/closures/{case.number}/certificate.pdf")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="closure-certificate-{case.number}.pdf"'
    assert case.certificate_code in pdf_text(response.content)
    statement = merchant.get(f"/api/v1/closures/{case.number}/statement.pdf")
    assert statement.status_code == 200
    assert "¥189.00" in pdf_text(statement.content)
