#!/usr/bin/env bash
# Copy the pinned front-end packages from node_modules into the console's static folder.
# Run by `make static` after `npm ci`; the result is served locally (never from a CDN).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
src="$here/node_modules"
dst="$here/src/posfleet/console/static/vendor"
rm -rf "$dst"
mkdir -p "$dst/bootstrap" "$dst/bootstrap-icons/fonts" "$dst/chartjs"
cp "$src/bootstrap/dist/css/bootstrap.min.css" "$src/bootstrap/dist/css/bootstrap.min.css.map" "$dst/bootstrap/"
cp "$src/bootstrap/dist/js/bootstrap.bundle.min.js" "$src/bootstrap/dist/js/bootstrap.bundle.min.js.map" "$dst/bootstrap/"
cp "$src/bootstrap-icons/font/bootstrap-icons.min.css" "$dst/bootstrap-icons/"
cp "$src/bootstrap-icons/font/fonts/"*.woff* "$dst/bootstrap-icons/fonts/"
cp "$src/chart.js/dist/chart.umd.min.js" "$dst/chartjs/"
[ -f "$src/chart.js/dist/chart.umd.min.js.map" ] && cp "$src/chart.js/dist/chart.umd.min.js.map" "$dst/chartjs/" || true
echo "vendored static assets into ${dst#"$here"/}"
