"""The ``posfleet`` command: Django management commands under one friendly name."""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "posfleet.config.settings.dev")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["posfleet", *(argv if argv is not None else sys.argv[1:])])
