#!/usr/bin/env bash
# Install what the headless-browser report test (tests/test_report.py, marked slow) needs:
# Debian's chromium + chromedriver (same version, from apt) and selenium into the given venv.
# Idempotent; run as root on Debian/Ubuntu. Usage: .ci/install-browser.sh [VENV_DIR]   (default: .venv)
# Nothing is downloaded by selenium itself: the test passes both binaries explicitly.
set -euo pipefail

VENV="${1:-.venv}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else echo "install-browser: need root or sudo" >&2; exit 1; fi
fi

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] && fc-list 2>/dev/null | grep -qi -e dejavu -e liberation; then
  echo "install-browser: chromium and chromedriver already installed"
else
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update
  $SUDO apt-get install -y --no-install-recommends chromium chromium-driver fonts-dejavu-core fontconfig
fi

"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "selenium>=4.15"
/usr/bin/chromium --version 2>/dev/null || true
/usr/bin/chromedriver --version
"$VENV/bin/python" -c "import selenium; print('selenium', selenium.__version__)"
