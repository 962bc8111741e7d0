"""Vendor the part of Bootstrap Icons the console uses: a stylesheet with only those icons' rules and a
WOFF2 font with only their glyphs (the whole set is 2,000 icons: 134 KB of font and 87 KB of CSS on
every first visit; the used part is a tenth of that). Run by `make setup` after `npm ci` and again
whenever a template, script or Python module changes (the Makefile tracks them).

Which icons are used, in src/posfleet outside tests: in templates and scripts every ``bi-NAME`` class
and every quoted string that is an icon's name (``{% include … with icon="bank" %}``); in Python
modules every string constant that is one (``"trash3"`` in a table of icons). A string that only
happens to be an icon's name ("table", "key") costs a few dozen bytes; a used icon left out would be a
blank square, so the net is wide on purpose. A name built at run time (``f"caret-{way}-fill"``) is not
seen: write icon names out whole.

Usage: python scripts/subset_icons.py [--source node_modules/bootstrap-icons/font]
       [--target src/posfleet/console/static/vendor/bootstrap-icons] [--scan src/posfleet]
"""

from __future__ import annotations

import argparse
import ast
import json
import logging
import re
from collections.abc import Iterable
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont

HERE = Path(__file__).resolve().parent.parent
NAME = r"[a-z0-9]+(?:-[a-z0-9]+)*"
CLASS = re.compile(rf"\bbi-({NAME})")  # class="bi bi-shop", classList.add("bi-check2")
QUOTED = re.compile(rf"""["']({NAME})["']""")  # {% include … with icon="bank" %}
SCANNED = {".html", ".py", ".js", ".txt"}
VENDOR = HERE / "src/posfleet/console/static/vendor/bootstrap-icons"
FONT_FILE = "fonts/bootstrap-icons.woff2"
CSS_FILE = "bootstrap-icons.min.css"
# The part of the library's stylesheet that is not one icon's rule: the @font-face, the `.bi::before`
# base rule and the size helpers. The icon rules follow it (``.bi-NAME::before{content:"\\f123"}``).
_FIRST_ICON_RULE = re.compile(r"\.bi-[a-z0-9-]+::before\{content:")


def used_names(roots: Iterable[Path], known: set[str]) -> set[str]:
    found: set[str] = set()
    for root in roots:
        for path in root.rglob("*"):
            if path.suffix not in SCANNED or {"vendor", "tests"} & set(path.parts) or not path.is_file():
                continue
            text = path.read_text(encoding="utf-8", errors="ignore")
            if path.suffix == ".py":
                found |= {
                    node.value
                    for node in ast.walk(ast.parse(text))
                    if isinstance(node, ast.Constant) and isinstance(node.value, str)
                }
            else:
                found |= set(CLASS.findall(text)) | set(QUOTED.findall(text))
    return found & known


def stylesheet(library_css: str, codepoints: dict[str, int], names: set[str]) -> str:
    first = _FIRST_ICON_RULE.search(library_css)
    if first is None:
        raise SystemExit("bootstrap-icons.min.css has no icon rules: has the package changed its layout?")
    head = library_css[: first.start()]
    # Only the WOFF2 font (every browser the console supports reads it), without the library's cache
    # buster: the static files' manifest puts the font's own hash in its name.
    face = re.compile(r"src:url\(\"fonts/bootstrap-icons\.woff2\?[0-9a-f]+\"\) format\(\"woff2\"\)[^;}]*")
    head, count = face.subn(f'src:url("{FONT_FILE}") format("woff2")', head)
    if count != 1:
        raise SystemExit("bootstrap-icons.min.css: the @font-face rule was not found")
    rules = "".join(f'.bi-{name}::before{{content:"\\{codepoints[name]:x}"}}' for name in sorted(names))
    return head + rules + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=HERE / "node_modules/bootstrap-icons/font")
    parser.add_argument("--target", type=Path, default=VENDOR)
    parser.add_argument("--scan", type=Path, action="append", default=None)
    args = parser.parse_args()
    logging.getLogger("fontTools").setLevel(logging.ERROR)  # notes about the font's own tables
    codepoints: dict[str, int] = json.loads((args.source / "bootstrap-icons.json").read_text())
    names = used_names(args.scan or [HERE / "src/posfleet"], set(codepoints))

    font = TTFont(args.source / FONT_FILE)
    options = subset.Options()
    options.flavor = "woff2"
    options.layout_features = ["*"]
    options.name_IDs = ["*"]  # keep the licence and copyright records
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=[codepoints[n] for n in names])
    subsetter.subset(font)
    target = args.target
    (target / "fonts").mkdir(parents=True, exist_ok=True)
    for stale in (target / "fonts").glob("*"):
        stale.unlink()
    font.flavor = "woff2"
    font.save(target / FONT_FILE)
    css = stylesheet((args.source / CSS_FILE).read_text(encoding="utf-8"), codepoints, names)
    (target / CSS_FILE).write_text(css, encoding="utf-8")
    print(f"bootstrap-icons: {len(names)} of {len(codepoints)} icons vendored into {target}")


if __name__ == "__main__":
    main()
