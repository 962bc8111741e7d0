"""One way to write a date and a moment per language (``config/formats``): templates name the formats
and never spell a pattern; a page shows its dates in the reader's language."""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path

import pytest
from django.utils import timezone, translation

from posfleet.platform.dates import day_text, moment_text

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "posfleet"
NAMED = {
    "DATE_FORMAT",
    "DATETIME_FORMAT",
    "SHORT_DATE_FORMAT",
    "SHORT_DATETIME_FORMAT",
    "TIME_FORMAT",
    "YEAR_MONTH_FORMAT",
    "MONTH_DAY_FORMAT",
    "c",  # ISO 8601, for machines: <time datetime="...">, data attributes
}
FILTER = re.compile(r"""\|\s*(?:date|time)\s*:\s*(?P<q>["'])(?P<format>.*?)(?P=q)""")


def test_templates_name_the_formats_and_never_spell_a_pattern():
    ad_hoc = []
    for path in sorted(PACKAGE.rglob("templates/**/*")):
        if path.suffix not in {".html", ".txt", ".xml"}:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for match in FILTER.finditer(line):
                if match["format"] not in NAMED:
                    ad_hoc.append(f"{path.relative_to(PACKAGE)}:{number}: {match[0]}")
    assert ad_hoc == [], "name a format of config/formats instead:\n" + "\n".join(ad_hoc)


def test_the_scan_sees_an_ad_hoc_pattern():
    line = """<td>{{ t.occurred_at|date:"Y-m-d H:i" }}</td><td>{{ d|date:'c' }}</td>"""
    assert [m["format"] for m in FILTER.finditer(line) if m["format"] not in NAMED] == ["Y-m-d H:i"]


@pytest.mark.parametrize(
    ("language", "day", "moment"),
    [("en", "7 Dec 2026", "7 Dec 2026 14:05"), ("zh-hans", "2026年12月7日", "2026年12月7日 14:05")],
)
def test_one_format_per_language(settings, language, day, moment):
    at = timezone.make_aware(datetime(2026, 12, 7, 14, 5, 30))  # the console's zone (Asia/Shanghai)
    with translation.override(language):
        assert day_text(date(2026, 12, 7)) == day
        assert moment_text(at) == moment
        assert day_text(at) == day
        assert day_text(None) == "—"
