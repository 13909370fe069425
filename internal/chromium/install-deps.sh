#!/bin/sh
# Installs Debian's chromium when no Chromium or Chrome is on PATH: `wfplab report --pdf`
# prints the report with it headless, and a test renders report.html in it. Installs
# only what is missing, so running it again does nothing; needs root (or sudo).
set -eu

for c in chromium chromium-browser google-chrome google-chrome-stable; do
	if command -v "$c" >/dev/null 2>&1; then
		echo "internal/chromium/install-deps.sh: $c is installed"
		exit 0
	fi
done
# Fonts with the glyphs the report uses (✓ ✗), so the page renders as it reads.
exec "$(dirname "$0")/../apt/install.sh" internal/chromium/install-deps.sh chromium fonts-dejavu-core
