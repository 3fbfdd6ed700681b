#!/usr/bin/env bash
# The README's pictures of the console: the browser tour (tests/browser/test_tour.py) walks every page as
# the demo's users, on the demo's data, and photographs each into docs/screenshots/ (1280×860, Chromium).
#   bash scripts/screenshots.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
SAGIP_SCREENSHOTS="$PWD/docs/screenshots" python3 -m pytest -q -p no:cacheprovider tests/browser/test_tour.py "$@"
ls -1 docs/screenshots
