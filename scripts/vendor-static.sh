#!/usr/bin/env bash
# Copy the pinned front-end packages from node_modules into the console's static folder.
# Run by `make static` after `npm ci`; the result is served locally (never from a CDN).
# Bootstrap Icons are vendored by scripts/subset_icons.py (only the icons the console uses), which the
# Makefile runs after this script and whenever a template changes.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
src="$here/node_modules"
dst="$here/src/posfleet/console/static/vendor"
rm -rf "$dst"
mkdir -p "$dst/bootstrap" "$dst/chartjs"
# A file's source map is copied when the package ships it; when it does not, the file's
# sourceMappingURL comment goes (collectstatic's manifest refuses a reference to a missing file).
vendor() {  # vendor FILE TARGET_DIR
  cp "$1" "$2/"
  if [ -f "$1.map" ]; then
    cp "$1.map" "$2/"
  else
    sed -i -E 's@(/\*|//)# sourceMappingURL=[^ *]+( \*/)?@@' "$2/$(basename "$1")"
  fi
}
vendor "$src/bootstrap/dist/css/bootstrap.min.css" "$dst/bootstrap"
vendor "$src/bootstrap/dist/js/bootstrap.bundle.min.js" "$dst/bootstrap"
vendor "$src/chart.js/dist/chart.umd.min.js" "$dst/chartjs"
echo "vendored static assets into ${dst#"$here"/}"
