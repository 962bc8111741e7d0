"""Static files as production collects and serves them (docs/adr/0032): every `{% static %}` a template
names is in the manifest (a missing entry would be a 500 on that page), CSS and JS references to other
files point at their hashed names, each file has brotli and gzip copies, WhiteNoise sends hashed names
with a year-long immutable cache and the rest briefly; the icon font is the subset, with every icon the
console names in it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import brotli
from django.test import Client

from posfleet.console.closure_timeline import ICONS
from posfleet.console.navigation import ACCOUNT, MAIN
from posfleet.console.presentation import COMMAND_ICONS
from posfleet.reports.catalogue import REPORTS
from posfleet.testing.static import production_static_settings

PACKAGE = Path(__file__).resolve().parents[2]  # src/posfleet
STATIC_TAG = re.compile(r"""\{%\s*static\s+(['"])(?P<name>[^'"]+)\1\s*%\}""")
HASHED = re.compile(r"\.[0-9a-f]{12}\.[a-z0-9]+$")
BROWSER = "gzip, deflate, br, zstd"


def manifest(root: Path) -> dict[str, str]:
    return json.loads((root / "staticfiles.json").read_text())["paths"]


def template_references() -> set[str]:
    names: set[str] = set()
    for template in PACKAGE.rglob("templates/**/*"):
        if template.suffix in {".html", ".txt"}:
            names |= {m["name"] for m in STATIC_TAG.finditer(template.read_text(encoding="utf-8"))}
    return names


def test_every_static_file_a_template_names_is_in_the_manifest_hashed_and_compressed(production_static):
    paths = manifest(production_static)
    names = template_references()
    assert {"vendor/bootstrap/bootstrap.min.css", "console/console.js", "console/favicon.svg"} <= names
    missing = sorted(names - paths.keys())
    assert missing == [], f"no manifest entry (a 500 in production): {missing}"
    for name in names:
        hashed = production_static / paths[name]
        assert HASHED.search(hashed.name), hashed
        assert hashed.read_bytes() != b""
        if not name.endswith((".woff2", ".png")):
            assert (
                brotli.decompress((hashed.parent / f"{hashed.name}.br").read_bytes()) == hashed.read_bytes()
            )
            assert (hashed.parent / f"{hashed.name}.gz").exists()


def test_references_inside_css_and_js_point_at_hashed_files_that_exist(production_static):
    paths = manifest(production_static)
    icons_css = (production_static / paths["vendor/bootstrap-icons/bootstrap-icons.min.css"]).read_text()
    fonts = re.findall(r'url\("([^"]+)"\)', icons_css)
    assert fonts == [
        Path(paths["vendor/bootstrap-icons/fonts/bootstrap-icons.woff2"])
        .relative_to("vendor/bootstrap-icons")
        .as_posix()
    ]
    for css_or_js in ("vendor/bootstrap/bootstrap.min.css", "vendor/bootstrap/bootstrap.bundle.min.js"):
        text = (production_static / paths[css_or_js]).read_text()
        for target in re.findall(r"sourceMappingURL=([^\s*]+)", text):
            assert HASHED.search(target), (css_or_js, target)
            assert (production_static / paths[css_or_js]).parent.joinpath(target).exists()


def test_pages_link_hashed_assets_that_whitenoise_serves_compressed_and_immutable(
    production_static, world, login
):
    with production_static_settings(production_static):
        html = login("admin").get("/console/terminals/").content.decode()  # a new client: a new handler
        assets = re.findall(r'(?:href|src)="(/static/[^"]+)"', html)
        assert any("bootstrap.min." in a for a in assets)
        assert any("htmx-2.min." in a for a in assets)  # django-htmx's tag goes through the manifest too
        client = Client()
        for url in assets:
            assert HASHED.search(url), url
            response = client.get(url, HTTP_ACCEPT_ENCODING=BROWSER)
            assert response.status_code == 200, url
            assert response["Cache-Control"] == "max-age=315360000, public, immutable", url
            if url.endswith(".woff2"):  # compressed inside: one version, sent as it is
                assert "Content-Encoding" not in response, url
                continue
            assert response["Content-Encoding"] == "br", url
            assert "accept-encoding" in response["Vary"].lower(), url
        # A file by its plain name is still there (old pages, bookmarks), cached only briefly.
        plain = client.get("/static/console/console.css", HTTP_ACCEPT_ENCODING="gzip")
        assert plain.status_code == 200
        assert plain["Content-Encoding"] == "gzip"
        assert "immutable" not in plain["Cache-Control"]


def icons_the_console_names() -> set[str]:
    """In templates (``bi-NAME``, ``icon="NAME"``) and in the Python tables that name icons."""
    named: set[str] = set()
    for template in PACKAGE.rglob("templates/**/*.html"):
        text = template.read_text(encoding="utf-8")
        named |= set(re.findall(r"\bbi-([a-z0-9]+(?:-[a-z0-9]+)*)", text))
        named |= set(re.findall(r'\bicon="([a-z0-9-]+)"', text))
    for item in (*MAIN, *ACCOUNT):
        named.add(item.icon)
        named |= {entry.icon for entry in getattr(item, "entries", ())}
    named |= set(COMMAND_ICONS.values()) | set(ICONS.values()) | {r.icon for r in REPORTS.values()}
    return named


def test_the_icon_font_is_the_subset_with_every_icon_the_console_names(production_static):
    paths = manifest(production_static)
    css = (production_static / paths["vendor/bootstrap-icons/bootstrap-icons.min.css"]).read_text()
    served = set(re.findall(r"\.bi-([a-z0-9-]+)::before\{content:", css))
    named = icons_the_console_names()
    assert {"shop", "credit-card-2-front", "hdd-stack", "check-lg", "percent"} <= named
    assert sorted(named - served) == [], "run `make setup` (scripts/subset_icons.py)"
    font = production_static / paths["vendor/bootstrap-icons/fonts/bootstrap-icons.woff2"]
    assert font.stat().st_size < 40_000  # the whole set is 134 KB
    assert len(served) < 400  # of 2,078
