#!/usr/bin/env bash
# corral proxy against Debian's HAProxy (configured as marathon-lb would be) for the same two
# backends: HTTP keep-alive and new connections through the vhost listener, and L4 through a
# tcp-mode service port. Backends are one HAProxy answering "ok" on two ports (not the bottleneck
# under test). Needs: haproxy, wrk, curl, python3 (haproxy and wrk installed when missing), and
#   cargo build --release -p corral-proxy --example bench_proxy
# Prints one line per run; BENCHMARKS.md keeps the medians. PROXY_BIN runs another build of
# bench_proxy; ONLY=l7-keepalive runs only the paths whose name holds it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
proxy_bin=${PROXY_BIN:-"$root/target/release/examples/bench_proxy"}
runs=${RUNS:-3}

if ! command -v haproxy >/dev/null 2>&1 || ! command -v wrk >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy wrk >/dev/null
fi

duration=${DURATION:-10s}
connections=${CONNECTIONS:-50}
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# shellcheck source=proxy-bench-haproxy.sh
source "$root/scripts/proxy-bench-haproxy.sh"
haproxy_backend_config 18101 18102 >"$work/backends.cfg"
haproxy_lb_config 18101 18102 >"$work/haproxy.cfg"

# A static catalog: answers at once, and holds a long poll for its wait.
cat > "$work/catalog.py" <<'PY'
import http.server, json, sys, time, urllib.parse
body = json.dumps({"index": 7, "services": [{"id": "/bench", "servicePorts": [18090],
  "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "bench.test", "HAPROXY_0_MODE": "tcp"},
  "instances": [{"taskId": "t%d" % n, "ip": "127.0.0.1", "ports": [{"number": p}], "ready": True,
                 "draining": False} for n, p in ((1, 18101), (2, 18102))]}]}).encode()
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if "index" in urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query):
            time.sleep(50)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", 18300), Handler).serve_forever()
PY

haproxy -f "$work/backends.cfg" -db & pids+=($!)
haproxy -f "$work/haproxy.cfg" -db & pids+=($!)
python3 "$work/catalog.py" & pids+=($!)
"$proxy_bin" http://127.0.0.1:18300 127.0.0.1:18180 127.0.0.1:18181 2>"$work/proxy.log" & pids+=($!)

for _ in $(seq 100); do
  if curl -sf -o /dev/null -H 'Host: bench.test' http://127.0.0.1:18180/ \
     && curl -sf -o /dev/null http://127.0.0.1:18090/ \
     && curl -sf -o /dev/null -H 'Host: bench.test' http://127.0.0.1:18280/; then break; fi
  sleep 0.1
done

bench() { # name url extra-args...
  local name=$1 url=$2; shift 2
  # ONLY=l7-keepalive (a part of the name) runs just those paths.
  case $name in *"${ONLY:-}"*) ;; *) return 0 ;; esac
  for run in $(seq "$runs"); do
    out=$(wrk -t2 -c"$connections" -d"$duration" --latency "$@" "$url")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1=="50%" {print $2}' <<<"$out")
    p99=$(awk '$1=="99%" {print $2}' <<<"$out")
    errors=$(awk '/Non-2xx|Socket errors/ {printf "%s ", $0}' <<<"$out")
    echo "$name run=$run rps=$rps p50=$p50 p99=$p99 load=$(cut -d' ' -f1 /proc/loadavg) ${errors}"
  done
}

bench corral-l7-keepalive http://127.0.0.1:18180/ -H 'Host: bench.test'
bench haproxy-l7-keepalive http://127.0.0.1:18280/ -H 'Host: bench.test'
bench corral-l7-newconn http://127.0.0.1:18180/ -H 'Host: bench.test' -H 'Connection: close'
bench haproxy-l7-newconn http://127.0.0.1:18280/ -H 'Host: bench.test' -H 'Connection: close'
bench corral-l4-keepalive http://127.0.0.1:18090/
bench haproxy-l4-keepalive http://127.0.0.1:18290/
