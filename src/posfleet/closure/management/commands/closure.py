"""`posfleet closure`: run closure cases from the shell (the worker does it on its own).

- ``posfleet closure run NUMBER``: run what case NUMBER can do now and print its steps;
- ``posfleet closure resume``: run every running case with a step due (what the scheduler's sweep
  asks the worker for), e.g. after a crash, without a worker.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from posfleet.closure.models import CaseStep, ClosureCase
from posfleet.closure.runner import advance, due_case_ids


class Command(BaseCommand):
    requires_system_checks: list[str] = []  # a worker-like command: start fast
    help = "Run closure cases: 'run NUMBER' (one case) or 'resume' (every case with a step due)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="what", required=True)
        run = sub.add_parser("run", help="run what one case can do now")
        run.add_argument("number", help="the case number, e.g. CL2612000001")
        sub.add_parser("resume", help="run every running case with a step due")

    def handle(self, *args: Any, what: str, **options: Any) -> None:
        if what == "run":
            case = ClosureCase.objects.filter(number=options["number"].strip().upper()).first()
            if case is None:
                raise CommandError(f"no closure case {options['number']!r}")
            ids = [case.pk]
        else:
            ids = due_case_ids()
        for case_id in ids:
            status = advance(case_id)
            case = ClosureCase.objects.get(pk=case_id)
            self.stdout.write(f"{case.number}: {status}")
            for step in CaseStep.objects.filter(case_id=case_id).order_by("pk"):
                waiting = f" (waiting for {step.waiting_for})" if step.waiting_for else ""
                self.stdout.write(f"  {step.name:<12} {step.state}{waiting} attempts={step.attempts}")
        if not ids:
            self.stdout.write("nothing is due")
