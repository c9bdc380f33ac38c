#!/usr/bin/env bash
# System packages the project needs beyond Python: a CJK TrueType font for receipts, the
# libraries Qt's offscreen/xcb platforms load, Xvfb for screenshots, poppler for pdftotext,
# PostgreSQL for the tests and benchmarks of what runs where many clinics' data meets.
# Installs only what is missing, and only where apt-get is usable (Debian/Ubuntu as root or sudo).
set -euo pipefail
PKGS=(fonts-wqy-microhei fonts-noto-cjk xvfb xauth poppler-utils postgresql libegl1 libgl1 libxkbcommon0
      libxkbcommon-x11-0 libfontconfig1 libdbus-1-3 libglib2.0-0 libxcb-cursor0 libxcb-icccm4
      libxcb-keysyms1 libxcb-shape0 libxcb-xinerama0 libxcb-randr0 libxcb-image0
      libxcb-render-util0)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "missing system packages (install them by hand): ${missing[*]}" >&2
  exit 0
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
