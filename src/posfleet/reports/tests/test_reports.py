"""The reports (ADR 0028) on a small fleet with three months of history (``world.py``), built once:

- each report's figures equal the numbers of the selectors it reads, or are counted by hand;
- an agent's figures are its subtree's only, and the same as the staff's narrowed to that agent;
- the console's table, the CSV, the Excel file and the API hold the same rows;
- merchants have no reports (console 404, API 403); another agent's page is 404; a refusal writes
  nothing.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from collections import Counter
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import time_machine
from django.db import connection
from django.db.models import Sum
from django.test import Client, TestCase
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation
from openpyxl import load_workbook

from posfleet.audit.models import AuditEvent
from posfleet.audit.vocabulary import EventType
from posfleet.enrollment.models import Application
from posfleet.enrollment.states import review_overdue
from posfleet.fleet import selectors as fleet
from posfleet.platform.clock import now, start_of
from posfleet.platform.context import Actor
from posfleet.reports import days, history, selectors
from posfleet.reports.catalogue import REPORTS, run
from posfleet.reports.models import DayEnd, MonthEnd
from posfleet.reports.month_end import month_end_close
from posfleet.reports.scope import MONTHS_MAX, ReportParams, report_viewer
from posfleet.reports.tests.world import NOW, SH, build_history
from posfleet.testing.personas import build_world
from posfleet.testing.sessions import sign_in

MONTHS = ReportParams(months=3)


def actor_of(user: Any) -> Actor:
    return Actor.for_user(user, request_id="test", source_ip="127.0.0.1")


def table_of(html: str) -> list[dict[str, str]]:
    """The console table's rows: each cell's raw value by column key."""
    body = html.split('data-testid="report-table"')[1].split("</table>")[0]
    return [
        dict(re.findall(r'data-key="([^"]+)" data-value="([^"]*)"', row))
        for row in body.split('data-testid="report-row"')[1:]
    ]


# Each report's selector, called as the reader's own (three months back or ahead; dormant: 20 days).
SELECTED = {
    "fleet": lambda user: history.fleet_by_month(user, 3),
    "activity": lambda user: history.activity_by_month(user, 3),
    "dormant": lambda user: selectors.dormant_terminals(user, 20),
    "expiry": lambda user: selectors.expiry_forecast(user, 3),
    "transactions": lambda user: selectors.transaction_volume(user, 3),
    "declines": lambda user: selectors.decline_rates(user, 3),
    "sla": lambda user: selectors.sla_compliance(user, 3),
    "refunds": lambda user: selectors.deposit_refund_times(user, 3),
}


def written(value: Any) -> str:
    """A selector's value as a file writes it: nothing for none, local times in ISO 8601."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return timezone.localtime(value).replace(microsecond=0).isoformat()
    return str(value)


def answered(value: Any) -> Any:
    """... and as the API answers it: whole numbers and none as JSON's, the rest as text."""
    return value if value is None or isinstance(value, int) else written(value)


def same_number(cell: Any, text: str) -> bool:
    """An Excel cell read back equals the raw text of a number (Excel keeps 50.00 as 50)."""
    return Decimal(str(cell)) == Decimal(text)


class ReportsTests(TestCase):
    @classmethod
    def setUpTestData(cls) -> None:
        cls.world = build_world()
        build_history(cls.world, actor_of)

    def setUp(self) -> None:
        traveller = time_machine.travel(NOW, tick=False)
        traveller.start()
        self.addCleanup(traveller.stop)

    def user(self, name: str) -> Any:
        return self.world.user(name)

    def rows(self, report: str, name: str, params: ReportParams = MONTHS) -> list[Any]:
        return list(run(REPORTS[report], report_viewer(self.user(name)), params).rows)

    def client_of(self, name: str) -> Client:
        return sign_in(Client(), self.user(name))

    # -- figures ------------------------------------------------------------------------------------

    def test_fleet_by_month_equals_the_fleet_selectors_now_and_the_history_before(self) -> None:
        for name in ("admin", "agent_a", "agent_b"):
            user = self.user(name)
            december = [row for row in self.rows("fleet", name) if row.month == "2026-12"]
            by_status: dict[str, int] = {}
            by_model: dict[str, int] = {}
            for row in december:
                by_status[row.status] = by_status.get(row.status, 0) + row.terminals
                by_model[row.model_name] = by_model.get(row.model_name, 0) + row.terminals
            assert by_status == fleet.count_by_status(user), name
            assert by_model == dict(fleet.count_by_model(user)), name
        # End of October: six terminals active (RPT-S-1 not registered yet, RPT-A-2 not deactivated yet).
        october = {
            (x.model, x.status): x.terminals for x in self.rows("fleet", "admin") if x.month == "2026-10"
        }
        assert october == {("pax-a920", "active"): 4, ("newland-n910", "active"): 2}
        november = {
            (x.model, x.status): x.terminals for x in self.rows("fleet", "agent_a") if x.month == "2026-11"
        }
        assert november == {
            ("pax-a920", "active"): 3,
            ("newland-n910", "active"): 1,
            ("newland-n910", "deactivated"): 1,
        }

    def test_activity_counts_the_audit_chain_and_the_closure_cases_in_scope(self) -> None:
        rows = {(x.month, x.event, x.reason): x.terminals for x in self.rows("activity", "admin")}
        activated_in_october = AuditEvent.objects.filter(
            event_type=EventType.TERMINAL_ACTIVATED,
            occurred_at__gte=datetime(2026, 10, 1, tzinfo=SH),
            occurred_at__lt=datetime(2026, 11, 1, tzinfo=SH),
        ).count()
        assert activated_in_october == 6
        assert rows == {
            ("2026-10", "terminal.activated", ""): activated_in_october,
            ("2026-11", "terminal.deactivated", "competition"): 1,
            ("2026-12", "terminal.deactivated", "closure"): 1,
            ("2026-12", "closure.requested", "shop_closed"): 1,
        }
        assert {(x.month, x.event, x.terminals) for x in self.rows("activity", "agent_b")} == {
            ("2026-10", "terminal.activated", 1)
        }
        labels = {x.reason: x.reason_label for x in self.rows("activity", "admin")}
        assert labels["shop_closed"] not in ("", "shop_closed")  # the closure reason's own words

    def test_stored_month_ends_give_the_live_figures_without_reading_the_history(self) -> None:
        """The month-end job stores the ended months once; the reports then read those (not the status
        periods or the audit chain) and show exactly what they computed live before."""
        readers = ("admin", "agent_a", "agent_b", "agent_a1")
        live = {(r, name): self.rows(r, name) for r in ("fleet", "activity") for name in readers}
        stored = month_end_close()
        assert [f"{m:%Y-%m}" for m in stored[-3:]] == ["2026-09", "2026-10", "2026-11"]
        assert len(stored) == MONTHS_MAX
        assert month_end_close() == []  # safe to run twice: a month is stored once
        for (report, name), rows in live.items():
            with CaptureQueriesContext(connection) as queries:
                again = self.rows(report, name)
            assert again == rows, (report, name)
            sql = [q["sql"] for q in queries.captured_queries]
            assert not any("fleet_statusperiod" in q for q in sql), (report, name)  # now: the counters
            if report == "activity":  # this month's events, in one query
                assert len([q for q in sql if "audit_auditevent" in q]) == 1, name
        october = MonthEnd.objects.get(month=date(2026, 10, 1))
        assert october.fleet.aggregate(n=Sum("terminals"))["n"] == 6
        assert set(october.activity.values_list("agent__code", "event_type", "terminals")) == {
            ("AG-A", "terminal.activated", 4),  # under the agent of the merchant the terminal was with
            ("AG-A1", "terminal.activated", 1),
            ("AG-B", "terminal.activated", 1),
        }

    def test_stored_days_give_the_dashboards_live_events_per_day(self) -> None:
        """The nightly job stores each ended day's terminal events per agent; the dashboards then add
        up those and count only today from the audit chain, and show what they counted live before."""
        readers = ("admin", "agent_a", "agent_b", "agent_a1")
        last = NOW.date()
        span = [last - timedelta(days=29 - i) for i in range(30)]
        live = {name: days.events_per_day(self.user(name), span) for name in readers}
        by_hand = Counter(
            timezone.localtime(at).date()
            for at in AuditEvent.objects.filter(
                subject_type="terminal", occurred_at__gte=start_of(span[0])
            ).values_list("occurred_at", flat=True)
        )
        assert {day: n for day, n in live["admin"].items() if n} == dict(by_hand)
        assert set(live["admin"]) == set(span)  # quiet days are there, as zeros
        assert sum(live["agent_a"].values()) > 0  # its closure and deposit in December
        assert sum(live["agent_a"].values()) >= sum(live["agent_a1"].values())
        assert sum(live["agent_a"].values()) + sum(live["agent_b"].values()) < sum(live["admin"].values())
        stored = days.day_end_close()
        assert stored == span[:-1]  # today is never stored
        assert days.day_end_close() == []  # safe to run twice
        for name in readers:
            with CaptureQueriesContext(connection) as queries:
                again = days.events_per_day(self.user(name), span)
            assert again == live[name], name
            chain = [q["sql"] for q in queries.captured_queries if "audit_auditevent" in q["sql"]]
            assert len(chain) == 1, name  # today's events only
        page = self.client_of("agent_a").get("/console/")
        chart = page.context["charts"]["activity"]["values"]
        assert chart == [live["agent_a"][day] for day in span]
        with time_machine.travel(NOW + timedelta(days=40), tick=False):
            days.day_end_close()
        assert not DayEnd.objects.filter(day__lte=last + timedelta(days=10)).exists()  # past the window

    def test_dormant_terminals_are_the_active_ones_without_a_recent_approved_sale(self) -> None:
        def sns(name: str, days: int) -> list[str]:
            return [x.sn for x in self.rows("dormant", name, ReportParams(days=days))]

        assert sns("admin", 20) == ["RPT-A-3", "RPT-A1-1"]  # never sold first, then the longest silent
        assert sns("admin", 60) == ["RPT-A-3"]
        assert sns("agent_a1", 20) == ["RPT-A1-1"]
        assert sns("agent_b", 20) == []
        silent = self.rows("dormant", "admin", ReportParams(days=20))[1]
        assert (silent.days_without_sale, silent.last_sale_at) == (
            30,
            datetime(2026, 11, 10, 10, 4, tzinfo=SH),
        )

    def test_expiry_forecast_equals_the_fleet_selector_month_by_month(self) -> None:
        months = (
            (date(2026, 12, 10), date(2026, 12, 31)),
            (date(2027, 1, 1), date(2027, 1, 31)),
            (date(2027, 2, 1), date(2027, 2, 28)),
        )
        for name in ("admin", "agent_a", "agent_b"):
            rows = self.rows("expiry", name)
            assert [x.month for x in rows] == ["2026-12", "2027-01", "2027-02"]
            expected = [fleet.sim_expiring(self.user(name), start, end).count() for start, end in months]
            assert [x.terminals for x in rows] == expected, name
        assert [x.terminals for x in self.rows("expiry", "admin")] == [0, 2, 1]  # RPT-A-2 is deactivated

    def test_volume_and_decline_rates_by_hand(self) -> None:
        volume = {
            (x.month, x.method): (x.sales, x.amount_fen, x.share_percent)
            for x in self.rows("transactions", "admin")
        }
        assert volume == {
            ("2026-11", "credit"): (2, 30_000, Decimal("90.91")),
            ("2026-11", "qr"): (1, 3_000, Decimal("9.09")),
            ("2026-12", "credit"): (1, 7_000, Decimal("46.67")),
            ("2026-12", "qr"): (1, 8_000, Decimal("53.33")),
        }
        assert {x.amount_yuan for x in self.rows("transactions", "agent_b")} == {
            Decimal("200.00"),
            Decimal("70.00"),
        }
        declines = {
            x.model: (x.sales, x.declined, x.decline_rate_percent) for x in self.rows("declines", "admin")
        }
        # PAX: RPT-A-1 (3 sales, 1 declined) and RPT-B-1 (3, 1); Newland: RPT-A1-1 (2, 1).
        assert declines == {"pax-a920": (6, 2, Decimal("33.33")), "newland-n910": (2, 1, Decimal("50.00"))}
        assert {x.model: (x.sales, x.declined) for x in self.rows("declines", "agent_b")} == {
            "pax-a920": (3, 1)
        }

    def test_sla_compliance_uses_the_review_clocks(self) -> None:
        rows = {(x.month, x.process): (x.on_time, x.late, x.waiting) for x in self.rows("sla", "admin")}
        assert rows == {
            ("2026-11", "application_review"): (1, 1, 0),
            ("2026-12", "closure_review"): (1, 0, 0),
        }
        late = Application.objects.get(status="submitted")
        assert review_overdue(late.status, late.review_due_at, now())  # the rule the report counts as late
        assert self.rows("sla", "agent_b") == []

    def test_deposit_refund_times_from_request_to_release(self) -> None:
        rows = self.rows("refunds", "admin")
        assert [(x.month, x.deposits, x.refunded_fen, x.average_days, x.longest_days) for x in rows] == [
            ("2026-12", 1, 25_000, Decimal("3.0"), Decimal("3.0"))
        ]
        assert self.rows("refunds", "agent_a") == self.rows("refunds", "admin")
        assert self.rows("refunds", "agent_b") == []

    def test_an_agent_narrowed_by_staff_is_what_its_own_people_see_in_a_bounded_number_of_queries(
        self,
    ) -> None:
        admin = self.user("admin")
        month_end_close()  # as the scheduler has every night: ended months read from their figures
        for report in REPORTS.values():
            params = ReportParams(months=3, days=20)
            with CaptureQueriesContext(connection) as queries:
                as_agent = run(report, report_viewer(self.user("agent_b")), params).rows
            assert len(queries) <= 3, (report.name, len(queries))
            as_staff = run(report, report_viewer(admin, "AG-B"), params).rows
            assert as_staff == as_agent, report.name
            text = repr(as_agent)
            for foreign in ("RPT-A", "100000000000001", "shop_closed", "newland"):
                assert foreign not in text, (report.name, foreign)

    # -- console, files and API ---------------------------------------------------------------------

    def test_table_csv_excel_and_api_hold_the_same_rows(self) -> None:
        client = self.client_of("agent_a")
        for name, query in (("transactions", "months=3"), ("dormant", "days=20"), ("fleet", "months=3")):
            report = REPORTS[name]
            page = client.get(f"/console/reports/{name}/?{query}")
            assert page.status_code == 200
            table = table_of(page.content.decode())
            api = client.get(f"/api/v1/reports/{name}?{query}").json()
            assert [c["key"] for c in api["columns"]] == [c.key for c in report.columns]
            events = AuditEvent.objects.filter(event_type=EventType.REPORT_EXPORTED).count()
            body = b"".join(client.get(f"/console/reports/{name}/export/csv/?{query}").streaming_content)
            files = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
            response = client.get(f"/console/reports/{name}/export/xlsx/?{query}")
            sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
            header, *cells = [list(row) for row in sheet.iter_rows(values_only=True)]
            excel = [dict(zip(header, row, strict=True)) for row in cells]
            assert AuditEvent.objects.filter(event_type=EventType.REPORT_EXPORTED).count() == events + 2

            assert len(table) == len(files) == len(excel) == len(api["rows"]) > 0, name
            for shown, written, spread, answered in zip(table, files, excel, api["rows"], strict=True):
                assert written == {k: "" if v is None else str(v) for k, v in answered.items()}, name
                assert shown == {k: written[k] for k in shown}, name
                for key, text in written.items():
                    cell = spread[key]
                    if text == "":
                        assert cell is None
                    elif isinstance(cell, datetime):
                        assert cell == datetime.fromisoformat(text).replace(tzinfo=None)
                    elif isinstance(cell, int | float):
                        assert same_number(cell, text), (name, key)
                    else:
                        assert cell == text, (name, key)
        volume = table_of(client.get("/console/reports/transactions/?months=3").content.decode())
        assert {row["amount_fen"] for row in volume} == {
            "10000",
            "3000",
            "8000",
        }  # merchant B's are not there

    def test_every_reports_page_files_and_api_give_its_selectors_numbers(self) -> None:
        """For each report and reader: the console's table, the CSV, the Excel file and the API hold the
        rows the report's selector returns when called directly, every field of every row."""
        assert set(SELECTED) == set(REPORTS)
        seen_rows = dict.fromkeys(SELECTED, 0)
        for reader in ("admin", "agent_a", "agent_b"):
            client = self.client_of(reader)
            for name, select in SELECTED.items():
                with translation.override(self.user(reader).language):  # labels in the reader's words
                    expected = select(self.user(reader))
                query = "days=20" if name == "dormant" else "months=3"
                fields = [f.name for f in dataclasses.fields(expected[0])] if expected else []
                api = client.get(f"/api/v1/reports/{name}?{query}").json()
                if expected:
                    assert [c["key"] for c in api["columns"]] == fields, name  # every field, in order
                assert api["rows"] == [{k: answered(getattr(row, k)) for k in fields} for row in expected], (
                    reader,
                    name,
                )
                body = b"".join(client.get(f"/console/reports/{name}/export/csv/?{query}").streaming_content)
                files = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
                assert files == [{k: written(getattr(row, k)) for k in fields} for row in expected], name
                response = client.get(f"/console/reports/{name}/export/xlsx/?{query}")
                header, *cells = load_workbook(
                    io.BytesIO(b"".join(response.streaming_content))
                ).active.iter_rows(values_only=True)
                assert len(cells) == len(expected), (reader, name)
                for cell_row, row in zip(cells, expected, strict=True):
                    for key, cell in zip(header, cell_row, strict=True):
                        value = getattr(row, key)
                        if value is None or value == "":
                            assert cell is None, (name, key)  # an empty cell
                        elif isinstance(value, datetime):
                            assert cell == timezone.localtime(value).replace(microsecond=0, tzinfo=None)
                        elif isinstance(value, int | Decimal):
                            assert Decimal(str(cell)) == value, (name, key)
                        else:
                            assert cell == str(value), (name, key)
                page = client.get(f"/console/reports/{name}/?{query}").content.decode()
                table = table_of(page) if 'data-testid="report-table"' in page else []  # none: no table
                assert len(table) == len(expected), (reader, name)
                for shown, row in zip(table, expected, strict=True):
                    assert shown, name
                    assert shown == {k: written(getattr(row, k)) for k in shown}, (reader, name)
                seen_rows[name] += len(expected)
        assert all(seen_rows.values()), seen_rows  # every report had rows to compare

    def test_who_may_see_reports_and_agent_pages(self) -> None:
        agent_a, agent_a1, admin = (
            self.client_of("agent_a"),
            self.client_of("agent_a1"),
            self.client_of("admin"),
        )
        assert admin.get("/console/reports/").status_code == 200
        for name in REPORTS:
            assert agent_a.get(f"/console/reports/{name}/").status_code == 200, name
        assert admin.get("/console/agents/AG-B/").status_code == 200
        own = agent_a.get("/console/agents/me/")
        assert (own.status_code, own["Location"]) == (302, "/console/agents/AG-A/")
        page = agent_a.get("/console/agents/AG-A/").content.decode()
        assert 'data-testid="kpi-terminals">5<' in page  # RPT-A-1, A-2, A-3, A1-1, CLS-1
        assert 'data-testid="kpi-applications">2<' in page  # one in fulfilment, one waiting (late)
        assert 'data-testid="agent-cases-count">1<' in page
        assert 'href="/console/agents/me/"' in page  # the agent's menu links it
        assert agent_a.get("/console/agents/AG-B/").status_code == 404
        assert agent_a1.get("/console/agents/AG-A/").status_code == 404  # a sub-agent does not see its parent
        assert agent_a.get("/console/reports/fleet/?agent=AG-B").status_code == 404
        assert agent_a.get("/console/reports/fleet/?months=99").status_code == 422
        assert agent_a.get("/api/v1/reports/fleet?agent=AG-B").status_code == 404
        assert agent_a.get("/api/v1/reports/fleet?months=0").status_code == 422
        assert agent_a.get("/api/v1/reports/nothing").status_code == 404

        merchant = self.client_of("merchant_a")
        audit = AuditEvent.objects.count()
        for url in (
            "/console/reports/",
            "/console/reports/transactions/",
            "/console/reports/transactions/export/csv/",
            "/console/agents/AG-A/",
            "/console/agents/me/",
        ):
            assert merchant.get(url).status_code == 404, url
        assert merchant.get("/api/v1/reports/transactions").status_code == 403
        assert merchant.get("/api/v1/reports").status_code == 403
        assert AuditEvent.objects.count() == audit  # no export was written or recorded
        assert "/console/reports/" not in merchant.get("/console/").content.decode()  # nor offered
        assert Client().get("/console/reports/").status_code == 302
        assert Client().get("/api/v1/reports/fleet").status_code == 401
