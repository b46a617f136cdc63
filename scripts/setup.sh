#!/usr/bin/env bash
# One idempotent set-up for a fresh Debian machine with Python 3.11: system packages, then the
# package itself with its pinned torch (2.13.0, a CPU build on these machines).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(libfluidsynth3 fluid-soundfont-gm ffmpeg chromium mma abcmidi)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! python3 -c "import generator, torch, pytest, hypothesis, playwright" 2>/dev/null \
   || [ pyproject.toml -nt .setup-stamp ]; then
  python3 -m pip install -q torch==2.13.0
  python3 -m pip install -q -e ".[test]"
  touch .setup-stamp
fi
