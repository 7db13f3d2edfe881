#!/usr/bin/env bash
# Runs every check and test Corral has. Sets up whatever the tests need on its own.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# One build from scratch (CI) gains nothing from incremental data, and it costs gigabytes.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

echo "== setup"
# promtool lints the metrics exposition in the API tests (Debian's prometheus package).
if ! command -v promtool >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  fi
fi

# The web UI test drives a real headless browser: Debian's chromium package.
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  fi
fi

# The pinned Python client libraries (pymesos, marathon) the compatibility tests drive.
./scripts/python-env.sh >/dev/null

echo "== format (after $SECONDS s)"
cargo fmt --all -- --check

echo "== lint (after $SECONDS s)"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== test (after $SECONDS s)"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
started=$(date +%s)
set +e
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
finished=$(date +%s)
# Each test binary's own time (cargo prints it after the binary runs), then one closing
# line for the whole run, summed over every binary.
echo "== time per test binary"
awk '/^     Running / { source = ($2 == "unittests" ? "unit tests" : $2); match($0, /deps\/[^)]*/); binary = substr($0, RSTART + 5, RLENGTH - 5);
                       sub(/-[0-9a-f]+$/, "", binary); binary = binary " (" source ")" }
     /^   Doc-tests / { binary = "doc-tests " $2 }
     /^test result:/ { for (i = 1; i <= NF; i++) if ($i == "finished") t = $(i+2);
                       sub(/s$/, "", t); if (t + 0 >= 0.05) printf "%8.2f s  %s\n", t, binary }' "$log"
echo "cargo test took $((finished - started)) s in all (building included)"

echo "== chaos (after $SECONDS s)"
# A short fixed-seed fault campaign (every fault kind once) against the debug corral binary
# the test build produced: real masters and agents in network namespaces (needs root).
chaos_status=0
if [ "$(id -u)" = 0 ]; then
  cargo build --locked -p corral-chaos
  chaos_started=$(date +%s)
  set +e
  "$CARGO_TARGET_DIR/debug/corral-chaos" --corral "$CARGO_TARGET_DIR/debug/corral" \
    --masters 3 --seconds 150 --rounds 1 --seed 7 --faults all 2>&1 | tee -a "$log"
  chaos_status=${PIPESTATUS[0]}
  set -e
  echo "chaos: $(( $(date +%s) - chaos_started )) s wall time, exit $chaos_status"
  # Counted as one test in the closing line.
  if [ "$chaos_status" = 0 ]; then echo "test result: ok. 1 passed; 0 failed" >> "$log";
  else echo "test result: FAILED. 0 passed; 1 failed" >> "$log"; fi
else
  echo "chaos: skipped, needs root for network namespaces"
fi

awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
echo "== done in $SECONDS s"
if [ "$status" != 0 ]; then exit "$status"; fi
exit "$chaos_status"
