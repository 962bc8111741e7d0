"""The zh-hans catalogue is complete: every string marked in the code has a translation that is
neither empty nor fuzzy, and keeps the original's placeholders."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import polib
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "posfleet"
CATALOGUE = PACKAGE / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
PLACEHOLDER = re.compile(r"%(?:\([a-z_]+\))?[sdr]|\{[a-z_]*\}")


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> polib.POFile:
    """The catalogue as `make messages` would leave it now: the committed one merged with every string
    currently marked in the code (run on a copy, so the working tree is untouched)."""
    if not shutil.which("xgettext"):
        pytest.fail("the translation check needs gettext (apt-get install gettext); `make test` installs it")
    copy = tmp_path_factory.mktemp("catalogue") / "posfleet"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("vendor", "__pycache__", "*.mo"))
    subprocess.run(
        [
            sys.executable,
            "-P",  # the copy's own `platform` package must not shadow the standard library's
            "-m",
            "django",
            "makemessages",
            "-l",
            "zh_Hans",
            "--no-obsolete",
            "--add-location",
            "file",
            "-i",
            "testing/*",
            "-i",
            "*/tests/*",
        ],
        cwd=copy,
        check=True,
        capture_output=True,
        env={
            "DJANGO_SETTINGS_MODULE": "posfleet.config.settings.test",
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(PACKAGE.parent),
        },
    )
    return polib.pofile(str(copy / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"))


def test_every_marked_string_is_translated(extracted):
    untranslated = [e.msgid for e in extracted.untranslated_entries()]
    assert untranslated == [], f"untranslated (run `make messages` and translate): {untranslated}"


def test_no_entry_is_fuzzy(extracted):
    committed = polib.pofile(str(CATALOGUE))
    assert [e.msgid for e in committed.fuzzy_entries()] == []
    assert [e.msgid for e in extracted.fuzzy_entries()] == [], "fuzzy after re-extraction: a msgid changed"


def test_the_committed_catalogue_is_current(extracted):
    committed = {(e.msgid, e.msgid_plural) for e in polib.pofile(str(CATALOGUE))}
    current = {(e.msgid, e.msgid_plural) for e in extracted}
    assert sorted(current - committed) == [], "strings missing from the catalogue: run `make messages`"
    assert sorted(committed - current) == [], "strings no longer used: run `make messages`"


def test_translations_keep_the_placeholders():
    for entry in polib.pofile(str(CATALOGUE)):
        expected = sorted(PLACEHOLDER.findall(entry.msgid))
        translations = entry.msgstr_plural.values() if entry.msgid_plural else [entry.msgstr]
        for text in translations:
            assert sorted(PLACEHOLDER.findall(text)) == expected, entry.msgid


def test_the_glossary_words_are_used():
    """The console's words for the terminal life are the glossary's (CONTEXT.md)."""
    words = {e.msgid: e.msgstr for e in polib.pofile(str(CATALOGUE))}
    assert (words["Device management"], words["Deactivate"], words["Deregister"], words["Report lost"]) == (
        "设备管理",
        "停用",
        "注销",
        "挂失",
    )
    assert (words["Allocate to agent"], words["Refurbish"], words["Scrap"]) == (
        "划拨给服务商",
        "翻新",
        "报废",
    )
