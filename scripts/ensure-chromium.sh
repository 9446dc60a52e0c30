#!/usr/bin/env bash
# Make sure Debian's `chromium` is installed, for the browser test of the HTML report
# (tests/test_browser.py drives it headless through playwright with
# executable_path=/usr/bin/chromium; playwright's own browser download is not used).
#
# A no-op when /usr/bin/chromium exists. Otherwise installs it with apt-get (as root, or
# through sudo without a password). Never fails the build: when it cannot install, it says
# why and exits 0, and the browser test then skips with that reason.
set -u

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

if [ -x "$CHROMIUM" ]; then
  exit 0
fi

note() { echo "ensure-chromium: $*" >&2; }

if ! command -v apt-get >/dev/null 2>&1; then
  note "apt-get is not available; $CHROMIUM is missing, so the browser test will skip."
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    note "not root and no passwordless sudo; cannot install chromium (the browser test will skip)."
    exit 0
  fi
fi

note "installing Debian's chromium (for the browser test of the report)..."
export DEBIAN_FRONTEND=noninteractive
if $SUDO apt-get update -qq >/dev/null 2>&1 \
  && $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null 2>&1; then
  if [ -x "$CHROMIUM" ]; then
    note "installed $("$CHROMIUM" --version 2>/dev/null || echo chromium)."
    exit 0
  fi
fi
note "could not install chromium with apt-get; the browser test will skip."
exit 0
