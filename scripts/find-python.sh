#!/usr/bin/env bash
# Print the path of a Python >= 3.12 interpreter, or explain how to get one and exit 1.
# Looks on PATH first, then in pyenv's versions (pyenv installs are not on PATH by themselves).
set -u
ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; }
for name in python3.12 python3.13 python3.14 python3; do
  p=$(command -v "$name" 2>/dev/null) && ok "$p" && { echo "$p"; exit 0; }
done
roots=()
command -v pyenv >/dev/null 2>&1 && roots+=("$(pyenv root)")
roots+=("${PYENV_ROOT:-$HOME/.pyenv}" /root/.pyenv /usr/local/pyenv /opt/pyenv)
for root in "${roots[@]}"; do
  for p in $(ls -d "$root"/versions/3.1[2-9]*/bin/python3.1[2-9] 2>/dev/null | sort -V); do
    ok "$p" && { echo "$p"; exit 0; }
  done
done
echo "mixedbayes needs Python >= 3.12, and none was found on PATH or in pyenv's versions." >&2
echo "Install one (e.g. 'pyenv install 3.12', or your OS package python3.12) or run make with PYTHON=/path/to/python3.12." >&2
exit 1
