#!/usr/bin/env bash
# Creates (once) the Python virtualenv with the pinned client libraries the compatibility
# tests use, and prints its python. Idempotent: a venv whose requirements have not changed
# is reused.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${CORRAL_VENV:-$PWD/.venv}"
requirements="tests/python/requirements.txt"
stamp="$venv/.requirements"

if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && cmp -s "$requirements" "$stamp"; then
  echo "$venv/bin/python"
  exit 0
fi

python3 -m venv "$venv" >&2
pip() { "$venv/bin/pip" --disable-pip-version-check -q "$@"; }

# http-parser 0.9.0: install from its source with the C extension switched off.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
pip download --no-deps --no-binary :all: -d "$work" http-parser==0.9.0 >&2
tar -xzf "$work"/http-parser-0.9.0.tar.gz -C "$work"
sed -i 's/^    run_setup(not IS_PYPY)$/    run_setup(False)/' "$work/http-parser-0.9.0/setup.py"
grep -q 'run_setup(False)' "$work/http-parser-0.9.0/setup.py"
pip install "$work/http-parser-0.9.0" >&2
pip install -r "$requirements" >&2
# The Apache Mesos CLI (AVENTER's release of Mesos's own `mesos` command): without its
# declared build and test tools, which it never imports (see requirements.txt).
pip install --no-deps avmesos-cli==1.0.0 >&2
"$venv/bin/python" -c 'import pymesos, marathon, http_parser.http, yaml, avmesos.cli.mesos' >&2
cp "$requirements" "$stamp"
echo "$venv/bin/python"
