# HAProxy configurations shared by proxy-bench.sh and proxy-rolling-bench.sh (sourced, not run),
# so both benchmarks compare corral proxy with the same HAProxy.

# The backend app: one HAProxy answering "200 ok" on every port given.
haproxy_backend_config() { # ports...
  cat <<CFG
global
  maxconn 4000
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend backend
CFG
  for port in "$@"; do echo "  bind 127.0.0.1:$port"; done
  echo '  http-request return status 200 content-type text/plain string "ok"'
}

# The load balancer in marathon-lb's shape for app /bench (service port 18090, vhost
# bench.test): an HTTP frontend routing by Host on 18280, and a tcp frontend for the service
# port on 18290, both balancing round robin over the backend ports given.
haproxy_lb_config() { # ports...
  cat <<CFG
global
  maxconn 4000
defaults
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  option redispatch
  retries 3
frontend marathon_http_in
  bind 127.0.0.1:18280
  mode http
  acl host_bench hdr(host) -i bench.test
  use_backend bench_18090 if host_bench
frontend bench_18090
  bind 127.0.0.1:18290
  mode tcp
  use_backend bench_18090_tcp
backend bench_18090
  mode http
  balance roundrobin
  option forwardfor
CFG
  for port in "$@"; do echo "  server s$port 127.0.0.1:$port"; done
  cat <<CFG
backend bench_18090_tcp
  mode tcp
  balance roundrobin
CFG
  for port in "$@"; do echo "  server s$port 127.0.0.1:$port"; done
}
