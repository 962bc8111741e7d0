"""The OpenAPI schema as reviewed text: docs/api/openapi.json is the committed snapshot.

``posfleet openapi --write`` refreshes it (``make openapi``); ``--check`` and a test fail while the
live schema differs, so every change to the API's contract shows up in review.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path

from django.utils import translation

SNAPSHOT = Path(__file__).resolve().parents[3] / "docs" / "api" / "openapi.json"
PATH_PREFIX = "/api/v1/"


def live_text() -> str:
    """The schema the running code serves, as pretty JSON with sorted keys and a final newline."""
    from posfleet.api.urls import api

    with translation.override("en"):
        schema = api.get_openapi_schema(path_prefix=PATH_PREFIX)
        return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def snapshot_text(path: Path = SNAPSHOT) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else ""


def diff(old: str, new: str, path: Path = SNAPSHOT) -> str:
    lines = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=f"{path} (committed)",
        tofile=f"{path} (live)",
    )
    return "".join(lines)
