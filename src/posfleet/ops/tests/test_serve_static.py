"""`posfleet serve` with production's storage collects the static files a deployment never collected,
instead of answering 500 on every page (docs/adr/0032)."""

from __future__ import annotations

import json

from django.test import override_settings

from posfleet.ops.management.commands.serve import collect_static_if_never_collected
from posfleet.testing.static import production_static_settings

ONE_FILE = {"STATICFILES_FINDERS": ["django.contrib.staticfiles.finders.FileSystemFinder"]}


def test_serve_collects_the_static_files_once_when_they_were_never_collected(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    (source / "site.css").write_text("body { color: #123456 }")
    root = tmp_path / "static"
    with production_static_settings(root), override_settings(STATICFILES_DIRS=[source], **ONE_FILE):
        assert collect_static_if_never_collected() is True
        hashed = json.loads((root / "staticfiles.json").read_text())["paths"]["site.css"]
        assert hashed != "site.css"
        assert (root / hashed).read_text() == "body { color: #123456 }"
        (source / "site.css").write_text("body { color: #654321 }")
        assert collect_static_if_never_collected() is False  # collected: an upgrade collects itself
        assert json.loads((root / "staticfiles.json").read_text())["paths"]["site.css"] == hashed


def test_development_and_tests_have_nothing_to_collect(tmp_path, settings):
    settings.STATIC_ROOT = tmp_path / "static"
    assert collect_static_if_never_collected() is False
    assert not (tmp_path / "static").exists()
