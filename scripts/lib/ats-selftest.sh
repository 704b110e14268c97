#!/usr/bin/env bash
# Self-test of scripts/lib/ats.sh. As root: scripts/lib/ats-selftest.sh
# Builds three network namespaces, runs an nginx origin and Apache Traffic Server (TLS, h2 + http/1.1, cache,
# X-Cache, TLS key log) from private directories, checks MISS then HIT over HTTP/2 and HTTP/1.1 with a verified
# certificate, then removes the namespaces and every process it started (also on failure or Ctrl-C). Files stay.
#
#   atsst-dev 10.99.11.2 ── 10.99.11.1 atsst-edge (ATS :8443) 10.99.10.1 ── 10.99.10.2 atsst-origin (nginx :8000)
#
# Environment:
#   ATS_SELFTEST_DIR=PATH    work folder (default: a new /tmp/ats-selftest.XXXXXX); left in place at the end
#   ATS_SELFTEST_BREAK=ats   make ATS fail at startup (bad user_id)      } to see that a failure is reported
#   ATS_SELFTEST_BREAK=cache make the origin send no-store (no HIT)      } and everything is still cleaned up
# Last line of output: OK, or FAILED: reason.
set -Eeuo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=ats.sh
source "$HERE/ats.sh"

NS_DEV=atsst-dev NS_EDGE=atsst-edge NS_ORIGIN=atsst-origin
DEV_IP=10.99.11.2 EDGE_IP=10.99.11.1 EDGE_UP=10.99.10.1 ORIGIN_IP=10.99.10.2
PORT=8443 HOST=edge.lab
BREAK=${ATS_SELFTEST_BREAK:-}

log() { printf '== %s\n' "$*"; }
die() { FAIL_REASON=$*; exit 1; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

cleanup_namespaces() {
  local ns pid i
  for ns in "$NS_DEV" "$NS_EDGE" "$NS_ORIGIN"; do
    ip netns pids "$ns" >/dev/null 2>&1 || continue
    for pid in $(ip netns pids "$ns"); do kill -TERM "$pid" 2>/dev/null || true; done
    for (( i = 0; i < 30; i++ )); do [[ -z "$(ip netns pids "$ns" 2>/dev/null)" ]] && break; sleep 0.1; done
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
}

on_exit() {
  local status=$?
  trap - EXIT INT TERM
  if [[ -n "${WORK:-}" ]]; then ats_stop "$WORK/ats" || true; fi
  if [[ -n "${NGINX_PID:-}" ]]; then kill -TERM "$NGINX_PID" 2>/dev/null || true; wait "$NGINX_PID" 2>/dev/null || true; fi
  cleanup_namespaces
  local left=""
  for ns in "$NS_DEV" "$NS_EDGE" "$NS_ORIGIN"; do ip netns pids "$ns" >/dev/null 2>&1 && left+=" $ns"; done
  [[ -z "$left" ]] || echo "warning: namespaces left:$left" >&2
  if (( status == 0 )); then
    echo "work folder: $WORK"; echo OK
  else
    [[ -n "${WORK:-}" ]] && echo "work folder: $WORK" >&2
    echo "FAILED: ${FAIL_REASON:-exit status $status (line ${ERR_LINE:-?})}"
  fi
  exit "$status"
}
trap on_exit EXIT
trap 'FAIL_REASON="interrupted"; exit 130' INT TERM
trap 'ERR_LINE=$LINENO' ERR

# wait_until SECONDS COMMAND...: retry every 0.1 s, bounded.
wait_until() {
  local deadline=$(( $(date +%s) + $1 )); shift
  while (( $(date +%s) <= deadline )); do "$@" && return 0; sleep 0.1; done
  return 1
}

(( EUID == 0 )) || die "must run as root"
for c in ip ss nginx curl openssl sha256sum "$ATS_BIN"; do command -v "$c" >/dev/null || die "missing $c"; done

WORK=${ATS_SELFTEST_DIR:-$(mktemp -d /tmp/ats-selftest.XXXXXX)}
mkdir -p "$WORK"
log "work folder $WORK"

# --- Network: dev ── edge ── origin. Leftovers from an earlier interrupted run go first.
cleanup_namespaces
for ns in "$NS_DEV" "$NS_EDGE" "$NS_ORIGIN"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip link add to-dev netns "$NS_EDGE" type veth peer name to-edge netns "$NS_DEV"
ip link add to-origin netns "$NS_EDGE" type veth peer name to-edge netns "$NS_ORIGIN"
ip -n "$NS_EDGE" addr add "$EDGE_IP/24" dev to-dev;       ip -n "$NS_DEV" addr add "$DEV_IP/24" dev to-edge
ip -n "$NS_EDGE" addr add "$EDGE_UP/24" dev to-origin;    ip -n "$NS_ORIGIN" addr add "$ORIGIN_IP/24" dev to-edge
ip -n "$NS_EDGE" link set to-dev up; ip -n "$NS_EDGE" link set to-origin up
ip -n "$NS_DEV" link set to-edge up; ip -n "$NS_ORIGIN" link set to-edge up

# --- Origin: nginx in the foreground, one process (its pid is ours), static files, max-age=600.
O="$WORK/origin"
mkdir -p "$O/www"
for i in 1 2 3; do head -c $(( i * 5000 )) /dev/urandom | base64 >"$O/www/obj$i"; done
cc="max-age=600"; [[ "$BREAK" == cache ]] && cc="no-store"
cat >"$O/nginx.conf" <<EOF
daemon off;
master_process off;
user root;
worker_processes 1;
pid $O/nginx.pid;
error_log $O/error.log;
events { worker_connections 64; }
http {
    log_format lab '\$msec \$remote_addr \$request_method \$request_uri \$status \$body_bytes_sent';
    access_log $O/access.log lab;
    client_body_temp_path $O/body; proxy_temp_path $O/proxy; fastcgi_temp_path $O/fcgi;
    uwsgi_temp_path $O/uwsgi; scgi_temp_path $O/scgi;
    default_type text/plain;
    server {
        listen $ORIGIN_IP:8000;
        root $O/www;
        location = /healthz { access_log off; return 200 "origin\n"; }
        location / { add_header Cache-Control "$cc"; }
    }
}
EOF
ip netns exec "$NS_ORIGIN" nginx -p "$O" -c "$O/nginx.conf" </dev/null >>"$O/error.log" 2>&1 &
NGINX_PID=$!
wait_until 5 ip netns exec "$NS_EDGE" curl -sf -o /dev/null -m 1 "http://$ORIGIN_IP:8000/healthz" \
  || die "origin nginx not answering (see $O/error.log)"

# --- ATS.
A="$WORK/ats"
ATS_CERT_NAMES="$HOST www.lab.example" ATS_NAME=edge-selftest \
  ats_render "$A" "$EDGE_IP" "$PORT" "http://$ORIGIN_IP:8000/" "$A/log/keys.log"
[[ "$BREAK" == ats ]] && sed -i 's/^CONFIG proxy.config.admin.user_id .*/CONFIG proxy.config.admin.user_id STRING root/' "$A/etc/records.config"
t0=$(now_ms)
ats_start "$NS_EDGE" "$A" || die "ats_start failed"
log "ATS ready after $(( $(now_ms) - t0 )) ms (pid $(cat "$A/ats.pid"))"

# --- Requests from the device, certificate verified against the CA, client key log kept for cross-checking.
# get PROTO PATH: prints "http_version status x-cache"; keeps headers and body as resp$N.* (N: set by the caller,
# as get runs in a command substitution).
N=0
get() {
  SSLKEYLOGFILE="$WORK/curl-keys.log" ip netns exec "$NS_DEV" curl -sS -m 5 "--$1" --cacert "$A/ssl/ca.pem" \
    --resolve "$HOST:$PORT:$EDGE_IP" -D "$WORK/resp$N.headers" -o "$WORK/resp$N.body" \
    -w '%{http_version} %{http_code} %header{x-cache}' "https://$HOST:$PORT$2"
}
# expect PROTO PATH WANT_VERSION WANT_XCACHE
expect() {
  local got before after
  N=$(( N + 1 ))
  before=$(wc -l <"$A/log/keys.log")
  got=$(get "$1" "$2") || die "curl --$1 $2 failed"
  after=$(wc -l <"$A/log/keys.log")   # read right after curl returned: written at handshake time, not later
  printf '   %-8s %-6s -> %s  | %s | key-log +%d lines\n' "$1" "$2" "$got" \
    "$(grep -i '^via:' "$WORK/resp$N.headers" | tr -d '\r')" $(( after - before ))
  [[ "$got" == "$3 200 $4" ]] || die "--$1 $2: got '$got', want '$3 200 $4'"
  cmp -s "$WORK/resp$N.body" "$O/www${2}" || die "--$1 $2: body differs from the origin's file"
  (( after > before )) || die "--$1 $2: ATS key log did not grow"
}
log "requests (protocol path -> http-version status X-Cache)"
expect http2   /obj1 2   miss
expect http2   /obj1 2   hit-fresh
expect http1.1 /obj2 1.1 miss
expect http1.1 /obj2 1.1 hit-fresh
expect http1.1 /obj1 1.1 hit-fresh
expect http2   /obj2 2   hit-fresh

# --- Key log: ATS's has every secret curl had (same client randoms, same secrets).
K="$A/log/keys.log"
[[ -s "$K" ]] || die "ATS key log $K is empty"
[[ -s "$WORK/curl-keys.log" ]] || die "curl wrote no key log (SSLKEYLOGFILE)"
missing=$(grep -cvxFf "$K" "$WORK/curl-keys.log" || true)   # grep -c: prints 0, exits 1
(( missing == 0 )) || die "$missing lines of curl's key log are not in ATS's"
log "ATS key log: $(wc -l <"$K") lines, labels: $(awk '{print $1}' "$K" | sort | uniq -c | awk '{printf "%s x%s ", $2, $1}')"
log "TLS: $(ip netns exec "$NS_DEV" curl -sv -o /dev/null --cacert "$A/ssl/ca.pem" --resolve "$HOST:$PORT:$EDGE_IP" \
  "https://$HOST:$PORT/obj3" 2>&1 | sed -n 's/^\* SSL connection using //p')"

# --- Origin saw each object once; ATS's access log has the same story (flushed within ~2 s).
for o in obj1 obj2; do
  n=$(grep -c " GET /$o " "$O/access.log" || true)
  (( n == 1 )) || die "origin served /$o $n times (want 1: the rest from cache)"
done
wait_until 6 bash -c "[[ -s '$A/log/access.log' && \$(wc -l <'$A/log/access.log') -ge 7 ]]" \
  || die "ATS access log has not got 7 lines after 6 s"
log "ATS access log:"; sed 's/^/   /' "$A/log/access.log"
codes=$(awk '{print $4}' "$A/log/access.log" | head -6 | tr '\n' ' ')
[[ "$codes" =~ ^TCP_MISS/200\ TCP_(MEM_)?HIT/200\ TCP_MISS/200\ TCP_(MEM_)?HIT/200\ TCP_(MEM_)?HIT/200\ TCP_(MEM_)?HIT/200\ $ ]] \
  || die "unexpected cache result codes in the access log: $codes"

# --- Clean stop.
t0=$(now_ms)
ats_stop "$A"
log "ATS stopped in $(( $(now_ms) - t0 )) ms"
! pgrep -f -- "--run-root=$A/runroot.yaml" >/dev/null || die "traffic_server still running after ats_stop"
