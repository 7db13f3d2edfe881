#!/usr/bin/env bash
# Errors during a rolling deploy: HAProxy reloaded as marathon-lb does it (the whole config
# regenerated and `haproxy -D -p PIDFILE -f CFG -sf OLDPID` on every change) against
# `corral proxy` following the same changes through its catalog, both under constant wrk load.
#
# The backend app has two instances. Every STEP seconds one more instance starts and joins the
# backend set, and at the next step the oldest leaves the set and is stopped (SIGTERM) KILL_AFTER
# seconds later, as Marathon kills a replaced task and the load balancer learns of it:
# {A,B} -> {A,B,C} -> {B,C} -> {B,C,D} -> {C,D} -> ... Each instance is its own HAProxy process
# answering "200 ok" on its port. Load: wrk on the vhost listener (HTTP keep-alive) and on the
# tcp-mode service port (L4), one run each per proxy and RUNS rounds.
# Needs: haproxy, wrk, curl, python3 (installed when missing), and
#   cargo build --release -p corral-proxy --example bench_proxy
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
proxy_bin=${PROXY_BIN:-"$root/target/release/examples/bench_proxy"}
runs=${RUNS:-3}
steps=${STEPS:-16}
step=${STEP:-1}
kill_after=${KILL_AFTER:-0.5}
connections=${CONNECTIONS:-50}
duration=$((steps * ${step%.*} + 3))

if ! command -v haproxy >/dev/null 2>&1 || ! command -v wrk >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy wrk >/dev/null
fi

work=$(mktemp -d)
pids=()
declare -A backend_pid=()
cleanup() {
  for pid in "${pids[@]}" "${backend_pid[@]}"; do kill "$pid" 2>/dev/null || true; done
  # Every HAProxy the reloads started (old ones may still be finishing connections).
  if [ -f "$work/lb.pids" ]; then
    while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$work/lb.pids"
  fi
  rm -rf "$work"
}
trap cleanup EXIT

ports=(18111 18112 18113 18114)
# shellcheck source=proxy-bench-haproxy.sh
source "$root/scripts/proxy-bench-haproxy.sh"

start_backend() { # port
  local port=$1
  [ -n "${backend_pid[$port]:-}" ] && return
  haproxy_backend_config "$port" >"$work/backend-$port.cfg"
  haproxy -f "$work/backend-$port.cfg" -db &
  backend_pid[$port]=$!
  for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/" && return; sleep 0.02; done
  echo "backend $port did not start" >&2
  exit 1
}

stop_backend() { # port
  local port=$1
  [ -z "${backend_pid[$port]:-}" ] && return
  kill "${backend_pid[$port]}" 2>/dev/null || true
  wait "${backend_pid[$port]}" 2>/dev/null || true
  unset "backend_pid[$port]"
}

catalog_index=0
catalog_json() { # ports...
  catalog_index=$((catalog_index + 1))
  python3 - "$catalog_index" "$@" <<'PY'
import json, sys
index, ports = int(sys.argv[1]), [int(p) for p in sys.argv[2:]]
print(json.dumps({"index": index, "services": [{"id": "/bench", "servicePorts": [18090],
  "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "bench.test", "HAPROXY_0_MODE": "tcp"},
  "instances": [{"taskId": "t%d" % p, "ip": "127.0.0.1", "ports": [{"number": p}], "ready": True,
                 "draining": False} for p in ports]}]}))
PY
}

apply() { # target ports...
  local target=$1; shift
  case $target in
    haproxy)
      haproxy_lb_config "$@" >"$work/haproxy.cfg"
      haproxy -D -p "$work/haproxy.pid" -f "$work/haproxy.cfg" -sf "$(cat "$work/haproxy.pid")"
      cat "$work/haproxy.pid" >>"$work/lb.pids"
      ;;
    corral)
      catalog_json "$@" >"$work/catalog.tmp"
      mv "$work/catalog.tmp" "$work/catalog.json"
      ;;
  esac
}

# A catalog that answers from catalog.json, and holds a long poll until its index moves on.
cat >"$work/catalog.py" <<'PY'
import http.server, json, sys, time, urllib.parse
path = sys.argv[1]
def current():
    with open(path, "rb") as f:
        body = f.read()
    return json.loads(body)["index"], body
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        index, body = current()
        if "index" in query:
            deadline = time.monotonic() + 50
            while index <= int(query["index"][0]) and time.monotonic() < deadline:
                time.sleep(0.01)
                index, body = current()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", 18300), Handler).serve_forever()
PY

wait_for() { # url host
  for _ in $(seq 100); do curl -sf -o /dev/null -H "Host: $2" "$1" && return; sleep 0.1; done
  echo "$1 does not answer" >&2
  exit 1
}

# The first set, and both proxies routing to it.
set_now=("${ports[0]}" "${ports[1]}")
for port in "${set_now[@]}"; do start_backend "$port"; done
haproxy_lb_config "${set_now[@]}" >"$work/haproxy.cfg"
haproxy -D -p "$work/haproxy.pid" -f "$work/haproxy.cfg"
cat "$work/haproxy.pid" >>"$work/lb.pids"
apply corral "${set_now[@]}"
python3 "$work/catalog.py" "$work/catalog.json" & pids+=($!)
"$proxy_bin" http://127.0.0.1:18300 127.0.0.1:18180 127.0.0.1:18181 2>"$work/proxy.log" & pids+=($!)
wait_for http://127.0.0.1:18280/ bench.test
wait_for http://127.0.0.1:18180/ bench.test
wait_for http://127.0.0.1:18090/ bench.test

# One deploy: `steps` changes, `step` seconds apart, applied to `target`.
deploy() { # target
  local target=$1 next=0 n leaving
  for n in $(seq "$steps"); do
    sleep "$step"
    if [ $((n % 2)) = 1 ]; then
      # A new instance starts and joins.
      while [[ " ${set_now[*]} " == *" ${ports[$next]} "* ]]; do next=$(((next + 1) % 4)); done
      start_backend "${ports[$next]}"
      set_now+=("${ports[$next]}")
      apply "$target" "${set_now[@]}"
    else
      # The oldest leaves, and is stopped once the load balancer has been told.
      leaving=${set_now[0]}
      set_now=("${set_now[@]:1}")
      apply "$target" "${set_now[@]}"
      sleep "$kill_after"
      stop_backend "$leaving"
    fi
  done
}

load() { # name url extra-args...
  local name=$1 url=$2; shift 2
  local target=${name%%-*}
  # Both proxies route to the instances the last deploy left, then settle.
  apply haproxy "${set_now[@]}"
  apply corral "${set_now[@]}"
  sleep 1
  wrk -t2 -c"$connections" -d"${duration}s" "$@" "$url" >"$work/wrk.out" &
  local wrk_pid=$!
  deploy "$target"
  wait "$wrk_pid"
  local out requests rps non2xx socket
  out=$(cat "$work/wrk.out")
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  socket=$(awk '/Socket errors/ {sub(/.*Socket errors: /, ""); print}' <<<"$out")
  echo "$name run=$run rps=$rps requests=$requests non2xx=${non2xx:-0} socket_errors=${socket:-none} load=$(cut -d' ' -f1 /proc/loadavg)"
}

for run in $(seq "$runs"); do
  load haproxy-l7-keepalive http://127.0.0.1:18280/ -H 'Host: bench.test'
  load corral-l7-keepalive http://127.0.0.1:18180/ -H 'Host: bench.test'
  load haproxy-l4-keepalive http://127.0.0.1:18290/
  load corral-l4-keepalive http://127.0.0.1:18090/
done
echo "haproxy processes started by reloads: $(wc -l <"$work/lb.pids")"
