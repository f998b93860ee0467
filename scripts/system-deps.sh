#!/usr/bin/env bash
# The Debian packages closeout needs beyond its Python lock file, installed when missing (as root, with apt-get).
#   runtime: Pango for WeasyPrint (the bulletin's PDF) and the Noto CJK fonts (the PDF and the charts draw Chinese
#            with them; without them the render refuses rather than print boxes)
#   test:    the runtime's, plus Chromium (the browser tests) and poppler-utils (pdftotext, pdffonts, pdftoppm)
# Usage: scripts/system-deps.sh runtime|test   (`make demo`, `make airflow` and .ci/run call it)
set -euo pipefail
RUNTIME="fonts-noto-cjk libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0"
TEST="chromium poppler-utils"

runtime_present() {  # read whole, then searched: grep -q would close the pipe early (SIGPIPE under pipefail)
  local libraries fonts
  libraries="$(ldconfig -p)" fonts="$(fc-list 2>/dev/null || true)"
  grep -q libpangoft2-1.0 <<<"$libraries" && grep -q libharfbuzz-subset <<<"$libraries" \
    && grep -qi "Noto Sans CJK" <<<"$fonts"
}
test_present() { command -v chromium >/dev/null 2>&1 && command -v pdftotext >/dev/null 2>&1; }

case "${1:-runtime}" in
  runtime) packages="$RUNTIME"; present() { runtime_present; } ;;
  test) packages="$RUNTIME $TEST"; present() { runtime_present && test_present; } ;;
  *) echo "usage: $0 runtime|test" >&2; exit 2 ;;
esac

present && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "closeout needs these Debian packages: $packages — install them (sudo apt-get install -y $packages) and run again" >&2
  exit 1
fi
# shellcheck disable=SC2086
apt-get install -y -qq $packages >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq $packages >/dev/null; }
present || { echo "installed $packages, but they are still not found (ldconfig, fc-list)" >&2; exit 1; }
