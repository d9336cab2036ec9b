#!/usr/bin/env bash
# Makes sure the browser tests can launch Chromium at $CHROMIUM_PATH (default /usr/bin/chromium).
# Debian's `chromium` package provides it; where apt-get exists it is installed (as root, or
# through sudo without a password). Anywhere else this names what is missing and fails.
set -euo pipefail

path=${CHROMIUM_PATH:-/usr/bin/chromium}
if [[ -x "$path" ]]; then exit 0; fi

say() { printf 'browser tests: %s\n' "$*" >&2; }

if [[ "$path" != /usr/bin/chromium ]]; then
  say "CHROMIUM_PATH=$path is not an executable file. Point it at a Chromium binary, or unset it to use Debian's /usr/bin/chromium."
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  say "/usr/bin/chromium is missing and apt-get is not available to install it."
  say "Install Chromium (Debian/Ubuntu package 'chromium') or set CHROMIUM_PATH to a Chromium binary."
  exit 1
fi
if [[ $(id -u) -eq 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  say "/usr/bin/chromium is missing; installing it needs root. Run: sudo apt-get install chromium"
  exit 1
fi
say "installing Debian's chromium package (once)"
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
if [[ ! -x "$path" ]]; then
  say "apt-get finished but $path is still missing."
  exit 1
fi
