"""posfleet openapi --write | --check: keep docs/api/openapi.json equal to the live schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from posfleet.api.openapi import SNAPSHOT, diff, live_text, snapshot_text


class Command(BaseCommand):
    help = "Write or check the committed OpenAPI snapshot (docs/api/openapi.json)."

    def add_arguments(self, parser: CommandParser) -> None:
        mode = parser.add_mutually_exclusive_group(required=True)
        mode.add_argument("--write", action="store_true", help="Write the live schema to the snapshot.")
        mode.add_argument("--check", action="store_true", help="Fail with a diff when they differ.")
        parser.add_argument(
            "--path", type=Path, default=SNAPSHOT, help=f"Snapshot file (default {SNAPSHOT})."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["path"]
        live = live_text()
        committed = snapshot_text(path)
        if options["write"]:
            if live == committed:
                self.stdout.write(f"{path} is up to date.")
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(live, encoding="utf-8")
            self.stdout.write(self.style.SUCCESS(f"Wrote {path}."))
            return
        if live != committed:
            self.stdout.write(diff(committed, live, path))
            raise CommandError(
                f"The OpenAPI schema differs from {path}: review the diff above, then run `make openapi`."
            )
        self.stdout.write(f"{path} matches the live schema.")
