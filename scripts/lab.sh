#!/usr/bin/env bash
# The migration lab (issue 6): real edge caches, a real device, a passive TAP, and statetap getting edge B ready
# before the device arrives. As root:
#   scripts/lab.sh          build the lab, run it, print the figures, remove everything (also on failure)
#   scripts/lab.sh down     remove whatever a previous run left (namespaces stlab-*, their processes, files)
# Environment:
#   STATETAP_BIN=PATH       the statetap binary (default: build this package's release product)
#   LAB_XDP_MODE=native|skb the capture's XDP mode (default native)
#   LAB_ALLOW_NO_AGENT=1    succeed even when this statetap has no agent/control plane (the migration half skipped)
#   LAB_KEEP=1              keep the work folder (logs, access logs, events, journal, key logs) and print where it is
#   LAB_HTTPS=0             skip the HTTPS round (no traffic server, no key log): the plaintext run alone
#
# What it builds, in network namespaces (addresses 10.77.x.y):
#
#   stlab-dev: device 10.77.0.2 on each of its links       edge namespaces: nginx proxy_cache :80 and   stlab-origin
#                                                          Apache Traffic Server :443 (TLS, h2/http1.1, cache)
#     to-a ──── to-dev  stlab-edge-a 10.77.1.1   to-origin 10.77.11.1 ── to-edge-a 10.77.11.2  nginx :80
#     to-b ──── to-dev  stlab-edge-b 10.77.2.1   to-origin 10.77.12.1 ── to-edge-b 10.77.12.2
#     to-c ──── to-dev  stlab-edge-c 10.77.3.1   to-origin 10.77.13.1 ── to-edge-c 10.77.13.2
#     tap-out ─ tap-in  stlab-tap: statetap capture (AF_XDP, edge A's TLS key log), control plane on 10.77.9.1:8080
#                       mgmt-b 10.77.9.1 ── mgmt 10.77.9.2 in stlab-edge-b: statetap agent on :9090
#
# The device keeps its address across links, as a UE does across a handover. The TAP: both directions of to-a and
# to-b (the device–edge links of the tapped cells) are copied by tc mirred into tap-out, whose peer statetap
# captures. Edge C is the control: same caches, same origin, never signalled, and not tapped.
#
# HTTPS: each edge also runs a traffic server (scripts/lib/ats.sh) on its address, port 443, caching from the same
# origin (over plain HTTP), with a certificate for the site signed by one CA shared by the three edges (the
# device's and the agent's --cacert). Each writes its own TLS key log ($WORK/edge-X-tls-keys.log); statetap
# follows edge A's only (--tls-keylog), as an operator would ship it: never the device's. The agent fetches HTTPS
# links through B's traffic server (--cache-https, --cache-ca-file), with the link's server name.
#
# The run: the device browses ~35 objects through edge A (30 cacheable, of varied sizes, some with ETag and
# Last-Modified, some with neither; 5 no-store or private). statetap must see every request. Then a MEC 012
# CellChangeNotification (IN_PREPARATION, cell-a → cell-b) goes to statetap's control plane; B's agent prefetches
# through B's cache and reports ready; the device moves to B and repeats its requests; then repeats them through C.
# Printed side by side: HIT ratio at B (migrated) and at C (not migrated), signal-to-ready time, what was
# prefetched, and whether any uncacheable object was fetched by the agent (B's and the origin's access logs).
# A second visit through C must hit (C's cache works, so C's cold figure means something).
# The HTTPS round: right after its plaintext visit through A, still before the signal, the device browses copies
# of the same objects (under /tls/) over HTTPS through A's traffic server (curl --http2 for three pages of nine,
# --http1.1 for one), so one migration plans both kinds of links; after ready, it repeats them through B's and
# (twice) C's traffic server. HIT is ATS's X-Cache: hit-fresh (anything else is not). Printed side by side for
# HTTP/1.1 (plaintext) and HTTPS: links learned, HIT ratio at B with migration, at C without. (statetap's own
# prefetch figures, `prefetched (statetap)` and the JSON's `prefetch.objects` etc., are then the one migration's:
# HTTP and HTTPS links together; the edge logs' figures are per protocol.)
# It fails (non-zero, with the reason) unless: statetap saw every request and lost no frame, HIT ratio with
# migration >= 95%, without <= 10%, no uncacheable object fetched by the agent or answered from a cache; the same
# for the HTTPS round (every HTTPS request seen through A as an https:// web link, per ALPN); and, unless
# LAB_ALLOW_NO_AGENT=1, when the migration half could not run. The last line of standard output is the figures as
# one JSON object (its `https` key: the HTTPS round's, null with LAB_HTTPS=0).
# Needs: iproute2, tc, ethtool, nginx (Debian nginx-light), curl, jq; for HTTPS trafficserver and openssl.
set -Eeuo pipefail
CALLER_PWD=$PWD
cd "$(dirname "$0")/.."
LAB_DIR="$PWD/scripts/lab"
# shellcheck source-path=SCRIPTDIR source=lib/ats.sh
source "$PWD/scripts/lib/ats.sh"           # ats_render, ats_start, ats_stop: the edges' HTTPS caches
STATE_FILE="/run/statetap-lab.work"       # where `down` finds the work folder of a run that did not clean up

DEV_IP=10.77.0.2
EDGES=(a b c)
declare -A EDGE_IP=([a]=10.77.1.1 [b]=10.77.2.1 [c]=10.77.3.1)
declare -A EDGE_UP=([a]=10.77.11.1 [b]=10.77.12.1 [c]=10.77.13.1)      # an edge's address toward the origin
declare -A ORIGIN_IP=([a]=10.77.11.2 [b]=10.77.12.2 [c]=10.77.13.2)    # the origin's address toward that edge
CP_ADDR=10.77.9.1:8080
AGENT_B=10.77.9.2:9090
AGENT_A=10.77.9.3:9090            # named in the edges file; A runs no agent in this lab (it is never a destination)
HOST=www.lab.example              # the site the device browses; curl --resolve points it at the current edge
TLS_PORT=443                      # the edges' traffic servers (HTTPS), on each edge's address
NS_DEV=stlab-dev NS_TAP=stlab-tap NS_ORIGIN=stlab-origin
ns_edge() { echo "stlab-edge-$1"; }

MIN_HIT_MIGRATED=95               # percent, at least
MAX_HIT_BASELINE=10               # percent, at most

log() { printf '== %s\n' "$*"; }
die() { printf 'FAILED: %s\n' "$*" >&2; exit 1; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# wait_until DESCRIPTION SECONDS COMMAND...: run COMMAND every 0.1 s until it succeeds; at most SECONDS*10 tries
# and SECONDS of wall time, whichever comes first (a try may itself take time: a curl with its own timeout).
wait_until() {
  local what=$1 seconds=$2; shift 2
  local tries=$(( seconds * 10 )) i deadline=$(( $(date +%s) + seconds ))
  for (( i = 0; i < tries && $(date +%s) <= deadline; i++ )); do
    if "$@"; then return 0; fi
    sleep 0.1
  done
  echo "timed out after ${seconds}s waiting for: $what" >&2
  return 1
}

# stop_pid PID SIGNAL SECONDS: signal a process we started and wait (bounded) for it to go; then SIGTERM (a
# background job of a non-interactive shell may have SIGINT ignored), then SIGKILL.
stop_pid() {
  local pid=$1 sig=$2 seconds=$3 i s
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
  for s in "$sig" TERM KILL; do
    kill "-$s" "$pid" 2>/dev/null || true
    for (( i = 0; i < seconds * 10; i++ )); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null || break
    echo "warning: pid $pid still running ${seconds}s after SIG$s" >&2
  done
  wait "$pid" 2>/dev/null || true
}

# ---------------------------------------------------------------------------------------------------------------
# Teardown

# Every process the lab starts runs inside one of its namespaces: `ip netns pids` finds exactly those, by id.
down() {
  local ns pid i
  for ns in $(ip netns list | awk '$1 ~ /^stlab-/ { print $1 }'); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -INT "$pid" 2>/dev/null || true; done
  done
  for ns in $(ip netns list | awk '$1 ~ /^stlab-/ { print $1 }'); do
    for (( i = 0; i < 30; i++ )); do [[ -z "$(ip netns pids "$ns" 2>/dev/null)" ]] && break; sleep 0.1; done
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  if [[ -f "$STATE_FILE" ]]; then
    local work; work=$(cat "$STATE_FILE")
    [[ "$work" == /tmp/stlab.* && -d "$work" ]] && rm -rf "$work"
    rm -f "$STATE_FILE"
  fi
}

on_exit() {
  local status=$?
  trap - EXIT INT TERM ERR
  if (( status != 0 )) && [[ -n "${WORK:-}" && -d "$WORK" ]]; then
    echo "-- logs of the failed run" >&2
    for f in "$WORK"/capture.log "$WORK"/agent.log "$WORK"/*/error.log "$WORK"/ats-*/log/error.log; do
      [[ -s "$f" ]] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }
    done
  fi
  stop_pid "${CAPTURE:-}" INT 10
  stop_pid "${AGENT:-}" INT 5
  for pid in "${NGINX_PIDS[@]}"; do stop_pid "$pid" TERM 3; done
  local dir; for dir in "${ATS_DIRS[@]}"; do ats_stop "$dir" || true; done
  if [[ "${LAB_KEEP:-0}" == 1 && -n "${WORK:-}" ]]; then
    rm -f "$STATE_FILE"; echo "work folder kept: $WORK" >&2
  fi
  down
  exit "$status"
}

# ---------------------------------------------------------------------------------------------------------------
# Build

# veth PAIR: NAME1 in NS1 and NAME2 in NS2, one queue each (an AF_XDP socket binds one queue), no offloads: the
# mirrored copies are then wire-sized frames, as a real TAP delivers them, not 64 KB GSO super-packets.
veth() {
  local ns1=$1 if1=$2 ns2=$3 if2=$4
  ip link add "$if1" numrxqueues 1 numtxqueues 1 netns "$ns1" type veth peer name "$if2" \
    numrxqueues 1 numtxqueues 1 netns "$ns2"
  ip netns exec "$ns1" ethtool -K "$if1" tso off gso off gro off >/dev/null 2>&1 || true
  ip netns exec "$ns2" ethtool -K "$if2" tso off gso off gro off >/dev/null 2>&1 || true
  ip -n "$ns1" link set "$if1" up; ip -n "$ns2" link set "$if2" up
}

# render TEMPLATE OUT NAME=VALUE...: copy a template from scripts/lab/, replacing each @NAME@.
render() {
  local template=$1 out=$2; shift 2
  local args=() kv
  for kv in "$@"; do args+=(-e "s|@${kv%%=*}@|${kv#*=}|g"); done
  sed "${args[@]}" "$LAB_DIR/$template" >"$out"
  if grep -q '@[A-Z_]*@' "$out"; then die "unreplaced placeholder in $out"; fi
}

build_network() {
  local ns e dir
  for ns in "$NS_DEV" "$NS_TAP" "$NS_ORIGIN" $(for e in "${EDGES[@]}"; do ns_edge "$e"; done); do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  done
  for e in "${EDGES[@]}"; do
    # Device ↔ edge: the device's address on every link, a host route each way.
    veth "$NS_DEV" "to-$e" "$(ns_edge "$e")" to-dev
    ip -n "$NS_DEV" addr add "$DEV_IP/32" dev "to-$e"
    ip -n "$NS_DEV" route add "${EDGE_IP[$e]}/32" dev "to-$e" src "$DEV_IP"
    ip -n "$(ns_edge "$e")" addr add "${EDGE_IP[$e]}/32" dev to-dev
    ip -n "$(ns_edge "$e")" route add "$DEV_IP/32" dev to-dev
    # Edge ↔ origin.
    veth "$(ns_edge "$e")" to-origin "$NS_ORIGIN" "to-edge-$e"
    ip -n "$(ns_edge "$e")" addr add "${EDGE_UP[$e]}/24" dev to-origin
    ip -n "$NS_ORIGIN" addr add "${ORIGIN_IP[$e]}/24" dev "to-edge-$e"
  done
  # The TAP: both directions of the tapped device–edge links copied into tap-out; statetap captures its peer.
  veth "$NS_DEV" tap-out "$NS_TAP" tap-in
  for e in a b; do
    ip netns exec "$NS_DEV" tc qdisc add dev "to-$e" clsact
    for dir in ingress egress; do
      ip netns exec "$NS_DEV" tc filter add dev "to-$e" "$dir" protocol all u32 match u32 0 0 \
        action mirred egress mirror dev tap-out
    done
  done
  # Management: statetap's control plane (tap namespace) reaches B's agent.
  veth "$NS_TAP" mgmt-b "$(ns_edge b)" mgmt
  ip -n "$NS_TAP" addr add "${CP_ADDR%:*}/24" dev mgmt-b
  ip -n "$(ns_edge b)" addr add "${AGENT_B%:*}/24" dev mgmt
}

# nginx NAME NAMESPACE TEMPLATE NAME=VALUE...: render a config into $WORK/NAME and run nginx in the foreground.
start_nginx() {
  local name=$1 ns=$2 template=$3; shift 3
  local dir="$WORK/$name"
  mkdir -p "$dir"
  render "$template" "$dir/nginx.conf" DIR="$dir" "$@"
  ip netns exec "$ns" nginx -p "$dir" -c "$dir/nginx.conf" 2>>"$dir/error.log" &
  NGINX_PIDS+=($!)
}

healthy() { ip netns exec "$1" curl -sf -o /dev/null -m 1 "http://$2/healthz"; }

# The objects: 30 cacheable in three groups (ETag + Last-Modified, Last-Modified only, no validators), sizes
# from ~300 bytes to ~580 KB, and 5 not cacheable (no-store, private). Text bodies (the /nv/ group goes through SSI).
make_objects() {
  local www="$WORK/origin/www" i size dir
  mkdir -p "$www"/{v,lm,nv,nostore,private}
  CACHEABLE=() UNCACHEABLE=()
  for (( i = 0; i < 30; i++ )); do
    size=$(( 300 + i * i * 680 ))               # 300 B … ~570 KB, quadratic spread
    case $(( i % 3 )) in 0) dir=v ;; 1) dir=lm ;; 2) dir=nv ;; esac
    local name; name=$(printf 'obj-%02d.%s' "$i" "$(case $(( i % 4 )) in 0) echo js ;; 1) echo css ;; 2) echo png ;; 3) echo json ;; esac)")
    head -c $(( size * 3 / 4 )) /dev/urandom | base64 -w 76 >"$www/$dir/$name"
    CACHEABLE+=("/$dir/$name")
  done
  for i in 0 1; do head -c 4000 /dev/urandom | base64 >"$www/nostore/cart-$i.json"; UNCACHEABLE+=("/nostore/cart-$i.json"); done
  for i in 0 1 2; do head -c 9000 /dev/urandom | base64 >"$www/private/profile-$i.json"; UNCACHEABLE+=("/private/profile-$i.json"); done
  OBJECTS=("${CACHEABLE[@]}" "${UNCACHEABLE[@]}")
  # The HTTPS round's: copies under /tls/ (the origin gives them the same headers), other URLs than the plaintext
  # round's. One protocol per page of nine (one connection each): the third page over HTTP/1.1, the others h2.
  mkdir -p "$www/tls"; cp -a "$www"/{v,lm,nv,nostore,private} "$www/tls/"
  TLS_CACHEABLE=() TLS_UNCACHEABLE=() TLS_OBJECTS=() TLS_H2_REQUESTS=0
  for i in "${CACHEABLE[@]}"; do TLS_CACHEABLE+=("/tls$i"); done
  for i in "${UNCACHEABLE[@]}"; do TLS_UNCACHEABLE+=("/tls$i"); done
  TLS_OBJECTS=("${TLS_CACHEABLE[@]}" "${TLS_UNCACHEABLE[@]}")
  for (( i = 0; i < ${#TLS_OBJECTS[@]}; i++ )); do [[ "$(tls_proto "$i")" == http2 ]] && TLS_H2_REQUESTS=$(( TLS_H2_REQUESTS + 1 )); done
}

# tls_proto INDEX: the curl protocol flag (without --) for the HTTPS object at INDEX: its page's.
tls_proto() { if (( $1 / 9 == 2 )); then echo http1.1; else echo http2; fi; }

start_servers() {
  start_nginx origin "$NS_ORIGIN" origin.conf.in
  for e in "${EDGES[@]}"; do
    start_nginx "edge-$e" "$(ns_edge "$e")" edge.conf.in ORIGIN="${ORIGIN_IP[$e]}" EDGE="edge-$e"
  done
  wait_until "origin nginx" 10 healthy "$(ns_edge a)" "${ORIGIN_IP[a]}" || die "the origin nginx did not start"
  for e in "${EDGES[@]}"; do
    wait_until "edge $e nginx" 10 healthy "$(ns_edge "$e")" "${EDGE_IP[$e]}" || die "edge $e's nginx did not start"
  done
  (( HTTPS )) || return 0
  # The traffic servers: one CA for the three (the first ats_render creates it), a certificate for the site each.
  # No health request: ats_start checks the listening socket, and the key logs hold only the device's and the
  # agent's sessions. Each key log exists (0600) before its traffic server or statetap opens it.
  mkdir -p "$WORK/tls-ca"
  TLS_CA="$WORK/tls-ca/ca.pem"
  for e in "${EDGES[@]}"; do
    local keylog="$WORK/edge-$e-tls-keys.log"
    (umask 077; : >>"$keylog")
    ATS_CERT_NAMES="$HOST" ATS_CA_DIR="$WORK/tls-ca" ATS_NAME="edge-$e" \
      ats_render "$WORK/ats-$e" "${EDGE_IP[$e]}" "$TLS_PORT" "http://${ORIGIN_IP[$e]}:80/" "$keylog" ||
      die "cannot render edge $e's traffic server configuration"
    ATS_DIRS+=("$WORK/ats-$e")
    ats_start "$(ns_edge "$e")" "$WORK/ats-$e" || die "edge $e's traffic server did not start"
  done
}

# ---------------------------------------------------------------------------------------------------------------
# statetap

# Both halves must be there: an agent with --listen and a capture with --serve. (`statetap agent --help` alone
# is no test: swift-argument-parser answers an unknown subcommand's --help with the root help and status 0.)
has_migration() {
  # The help texts are read whole first: `grep -q` in a pipe would stop reading early, and under pipefail the
  # writer's SIGPIPE would fail the check.
  local agent_help capture_help
  agent_help=$("$ST" agent --help 2>&1 || true); capture_help=$("$ST" capture --help 2>&1 || true)
  grep -q -- '--listen' <<<"$agent_help" && grep -q -- '--serve' <<<"$capture_help"
}
# The capture reads HTTPS from a key log; the agent fetches HTTPS links through the cache's TLS port.
has_tls_keylog() { local h; h=$("$ST" capture --help 2>&1 || true); grep -q -- '--tls-keylog' <<<"$h"; }
has_agent_https() { local h; h=$("$ST" agent --help 2>&1 || true); grep -q -- '--cache-https' <<<"$h"; }

start_capture() {
  local args=(capture -i tap-in --xdp-mode "${LAB_XDP_MODE:-native}" --stats-interval 0 --json
              --journal "$WORK/journal" --events jsonl --events-out "$WORK/events.jsonl")
  if (( MIGRATION )); then
    args+=(--serve "$CP_ADDR" --token-file "$WORK/token" --edges "$WORK/edges.json")
  fi
  # Edge A's key log, as its operator ships it (created by start_servers, before its traffic server started).
  (( HTTPS )) && args+=(--tls-keylog "$WORK/edge-a-tls-keys.log")
  ip netns exec "$NS_TAP" "$ST" "${args[@]}" >"$WORK/summary.json" 2>"$WORK/capture.log" &
  CAPTURE=$!
  capture_ready() { kill -0 "$CAPTURE" 2>/dev/null && grep -qs "capturing on" "$WORK/capture.log"; }
  wait_until "statetap capture" 30 capture_ready || die "statetap capture did not start"
  if (( MIGRATION )); then
    cp_ready() { grep -qs "control plane listening on" "$WORK/capture.log"; }
    wait_until "statetap control plane" 20 cp_ready || die "the control plane did not start"
  fi
}

start_agent() {
  mkdir -p "$WORK/agent-journal"
  local https_args=()
  (( HTTPS && AGENT_HTTPS )) && https_args=(--cache-https "https://${EDGE_IP[b]}:$TLS_PORT" --cache-ca-file "$TLS_CA")
  ip netns exec "$(ns_edge b)" "$ST" agent --listen "$AGENT_B" --cache "http://${EDGE_IP[b]}" "${https_args[@]}" \
    --journal "$WORK/agent-journal" --token-file "$WORK/token" --concurrency 8 >"$WORK/agent.out" 2>"$WORK/agent.log" &
  AGENT=$!
  agent_ready() { kill -0 "$AGENT" 2>/dev/null && grep -qs "agent listening on" "$WORK/agent.log"; }
  wait_until "statetap agent" 20 agent_ready || die "statetap agent did not start"
}

# cp_call METHOD PATH [BODYFILE]: a control-plane request from the tap namespace; prints "BODY\nSTATUS".
cp_call() {
  local method=$1 path=$2 body=${3:-}
  # The token from a header file (curl -H @file): not on a command line that ps shows.
  local args=(-s -m 5 -X "$method" -H "@$WORK/auth-header" -w '\n%{http_code}')
  [[ -n "$body" ]] && args+=(-H 'Content-Type: application/json' --data-binary "@$body")
  ip netns exec "$NS_TAP" curl "${args[@]}" "http://$CP_ADDR$path" || true
}

# The number of links statetap holds for the device, whichever shape the answer has: a top-level `links` (a count,
# an array, or an object keyed by URL, as in `statetap state show --json`'s snapshot) or `link_count`, else the sum
# over every nested object with `links` (applications).
device_links() {
  local out; out=$(cp_call GET "/v1/devices/$DEV_IP")
  [[ "$(tail -n1 <<<"$out")" == 200 ]] || { echo 0; return; }
  sed '$d' <<<"$out" | jq '
    def n: if type == "number" then . elif type == "array" or type == "object" then length else 0 end;
    if has("links") then (.links | n)
    elif has("link_count") then .link_count
    else ([.. | objects | select(has("links")) | .links | n] | add // 0) end' 2>/dev/null || echo 0
}

# ---------------------------------------------------------------------------------------------------------------
# The device

# The curl -w output per request: URL, status, X-Cache-Status, size. %header{} needs curl 7.84.
curl_has_header_var() {
  local v; v=$(curl --version | awk 'NR == 1 { print $2 }')
  [[ "$(printf '%s\n7.84.0\n' "$v" | sort -V | head -n1)" == 7.84.0 ]]
}

# browse EDGE OUT: the device fetches every object through EDGE, as a browser does: a few keep-alive connections
# (one curl per "page" of 9 objects). Appends "PATH STATUS CACHE-STATUS SIZE" lines to OUT. (A curl older than
# 7.84 has no %header{}: then one curl per object, its headers dumped to a file.)
browse() {
  local e=$1 out=$2 i j cfg status size cache
  local curl=(ip netns exec "$NS_DEV" curl -s -m 30 --resolve "$HOST:80:${EDGE_IP[$e]}")
  for (( i = 0; i < ${#OBJECTS[@]}; i += 9 )); do
    if (( HEADER_VAR )); then
      cfg="$WORK/curl-$e-$i.cfg"; : >"$cfg"
      for (( j = i; j < i + 9 && j < ${#OBJECTS[@]}; j++ )); do
        printf 'url = "http://%s%s"\noutput = "/dev/null"\n' "$HOST" "${OBJECTS[$j]}" >>"$cfg"
      done
      "${curl[@]}" -K "$cfg" -w '%{url_effective} %{http_code} %header{x-cache-status} %{size_download}\n' |
        sed -E "s|^http://$HOST||; s/  / - /" >>"$out"
    else
      for (( j = i; j < i + 9 && j < ${#OBJECTS[@]}; j++ )); do
        read -r status size < <("${curl[@]}" -o /dev/null -D "$WORK/headers" -w '%{http_code} %{size_download}\n' \
          "http://$HOST${OBJECTS[$j]}")
        cache=$(awk 'tolower($1) == "x-cache-status:" { sub(/\r$/, "", $2); print $2 }' "$WORK/headers")
        echo "${OBJECTS[$j]} $status ${cache:--} $size" >>"$out"
      done
    fi
  done
  local n; n=$(wc -l <"$out")
  (( n == ${#OBJECTS[@]} )) || die "the device got $n answers through edge $e for ${#OBJECTS[@]} requests"
  if awk '$2 != 200 { bad = 1 } END { exit !bad }' "$out"; then die "non-200 answers through edge $e: $(awk '$2 != 200' "$out")"; fi
}

is_uncacheable() { [[ "$1" == /nostore/* || "$1" == /private/* ]]; }

# hit_ratio FILE: percentage (integer, rounded down) of cacheable objects answered from the cache.
hit_ratio() {
  awk '$1 !~ /^\/(nostore|private)\// { n++; if ($3 == "HIT") h++ } END { printf "%d", n ? 100 * h / n : 0 }' "$1"
}
hit_count() { awk '$1 !~ /^\/(nostore|private)\// && $3 == "HIT" { h++ } END { print h + 0 }' "$1"; }

# web_links SERVER: how many web_link events statetap wrote for the device's requests to SERVER (ADDR:PORT).
web_links() {
  [[ -f "$WORK/events.jsonl" ]] || { echo 0; return; }
  jq -c --arg d "$DEV_IP" --arg s "$1" 'select(.kind == "web_link" and .device == $d and .server == $s)' \
    "$WORK/events.jsonl" 2>/dev/null | wc -l
}

# browse_https EDGE OUT: the HTTPS round's browse, through EDGE's traffic server, the certificate checked against
# the lab's CA: one curl (one connection) per page of 9, over h2 or HTTP/1.1 (tls_proto). Appends
# "PATH STATUS X-CACHE SIZE HTTP-VERSION" lines to OUT.
browse_https() {
  local e=$1 out=$2 i j cfg proto status size cache version
  local curl=(ip netns exec "$NS_DEV" curl -s -m 30 --cacert "$TLS_CA" --resolve "$HOST:$TLS_PORT:${EDGE_IP[$e]}")
  for (( i = 0; i < ${#TLS_OBJECTS[@]}; i += 9 )); do
    proto=$(tls_proto "$i")
    if (( HEADER_VAR )); then
      cfg="$WORK/curl-tls-$e-$i.cfg"; : >"$cfg"
      for (( j = i; j < i + 9 && j < ${#TLS_OBJECTS[@]}; j++ )); do
        printf 'url = "https://%s%s"\noutput = "/dev/null"\n' "$HOST" "${TLS_OBJECTS[$j]}" >>"$cfg"
      done
      "${curl[@]}" "--$proto" -K "$cfg" -w '%{url_effective} %{http_code} %header{x-cache} %{size_download} %{http_version}\n' |
        sed -E "s|^https://$HOST||; s/  / - /" >>"$out"
    else
      for (( j = i; j < i + 9 && j < ${#TLS_OBJECTS[@]}; j++ )); do
        read -r status size version < <("${curl[@]}" "--$proto" -o /dev/null -D "$WORK/headers" \
          -w '%{http_code} %{size_download} %{http_version}\n' "https://$HOST${TLS_OBJECTS[$j]}")
        cache=$(awk 'tolower($1) == "x-cache:" { sub(/\r$/, "", $2); print $2 }' "$WORK/headers")
        echo "${TLS_OBJECTS[$j]} $status ${cache:--} $size $version" >>"$out"
      done
    fi
  done
  local n h2; n=$(wc -l <"$out"); h2=$(awk '$5 == "2" { n++ } END { print n + 0 }' "$out")
  (( n == ${#TLS_OBJECTS[@]} )) || die "the device got $n HTTPS answers through edge $e for ${#TLS_OBJECTS[@]} requests"
  if awk '$2 != 200 { bad = 1 } END { exit !bad }' "$out"; then die "non-200 HTTPS answers through edge $e: $(awk '$2 != 200' "$out")"; fi
  (( h2 == TLS_H2_REQUESTS )) || die "$h2 HTTPS answers through edge $e came over h2, $TLS_H2_REQUESTS were asked for"
}

# tls_hit_ratio FILE, tls_hit_count FILE: hit_ratio and hit_count for the HTTPS round (X-Cache hit-fresh).
tls_hit_ratio() {
  awk '$1 !~ /^\/tls\/(nostore|private)\// { n++; if ($3 == "hit-fresh") h++ } END { printf "%d", n ? 100 * h / n : 0 }' "$1"
}
tls_hit_count() { awk '$1 !~ /^\/tls\/(nostore|private)\// && $3 == "hit-fresh" { h++ } END { print h + 0 }' "$1"; }

# tls_web_links SERVER [ALPN]: web_link events for the device's HTTPS requests to SERVER (https:// URLs of the
# site, read through TLS), with that ALPN if given.
tls_web_links() {
  [[ -f "$WORK/events.jsonl" ]] || { echo 0; return; }
  jq -c --arg d "$DEV_IP" --arg s "$1" --arg a "${2:-}" --arg u "https://$HOST/" '
    select(.kind == "web_link" and .device == $d and .server == $s and .transport == "tls"
           and ((.url // "") | startswith($u)) and ($a == "" or .alpn == $a))' "$WORK/events.jsonl" 2>/dev/null | wc -l
}

# ---------------------------------------------------------------------------------------------------------------
# The run

run() {
  [[ $(id -u) -eq 0 ]] || { echo "error: the lab needs root (namespaces, tc, XDP); try: sudo $0" >&2; exit 1; }
  scripts/install-deps.sh --live                 # nginx, curl, jq, iproute2, ethtool and the build's libraries
  for tool in nginx curl jq ip tc ethtool; do command -v "$tool" >/dev/null || die "$tool is not installed (scripts/install-deps.sh --live; jq)"; done
  nginx -V 2>&1 | grep -q -- '--without-http_proxy_module' && die "this nginx has no proxy module"
  if [[ -n "${STATETAP_BIN:-}" ]]; then
    ST=$STATETAP_BIN
    [[ "$ST" == /* ]] || ST="$CALLER_PWD/$ST"
  else
    swift build -c release --product statetap >/dev/null
    ST="$(swift build -c release --show-bin-path)/statetap"
  fi
  [[ -x "$ST" ]] || die "no statetap binary at $ST"
  HEADER_VAR=0; curl_has_header_var && HEADER_VAR=1
  MIGRATION=0; has_migration && MIGRATION=1
  HTTPS=1 AGENT_HTTPS=0
  [[ "${LAB_HTTPS:-1}" == 0 ]] && HTTPS=0
  if (( HTTPS )); then
    for tool in openssl "$ATS_BIN"; do
      command -v "$tool" >/dev/null || die "$tool is not installed (apt-get install trafficserver openssl; or LAB_HTTPS=0)"
    done
    has_tls_keylog || die "$ST has no \`capture --tls-keylog\` (LAB_HTTPS=0 runs the plaintext lab alone)"
    has_agent_https && AGENT_HTTPS=1
  fi

  down                                           # whatever an earlier run left
  WORK=$(mktemp -d /tmp/stlab.XXXXXX)
  echo "$WORK" >"$STATE_FILE"
  NGINX_PIDS=() ATS_DIRS=() CAPTURE="" AGENT="" TLS_CA=""
  trap on_exit EXIT
  trap 'echo "FAILED: line $LINENO: $BASH_COMMAND" >&2' ERR
  trap 'echo "interrupted: cleaning up" >&2; exit 130' INT TERM

  log "network: device, edges a b c, origin, tap ($WORK)"
  build_network
  make_objects
  log "servers: origin nginx and three nginx edge caches (${#CACHEABLE[@]} cacheable objects, ${#UNCACHEABLE[@]} not)"
  (( HTTPS )) && log "servers: and three traffic servers, HTTPS on :$TLS_PORT (h2, http/1.1), one CA, the same origin"
  start_servers

  TOKEN=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
  printf '%s\n' "$TOKEN" >"$WORK/token"; chmod 600 "$WORK/token"
  (umask 077; printf 'Authorization: Bearer %s\n' "$TOKEN" >"$WORK/auth-header")
  render edges.json.in "$WORK/edges.json" AGENT_A="$AGENT_A" AGENT_B="$AGENT_B"
  if (( MIGRATION )); then
    log "statetap: capture with the control plane on $CP_ADDR, agent at edge B on $AGENT_B"
    start_agent
  else
    log "statetap: capture only (this statetap has no agent: the migration half will be SKIPPED)"
  fi
  start_capture

  log "device browses ${#OBJECTS[@]} objects through edge A"
  browse a "$WORK/via-a.txt"
  local requests=${#OBJECTS[@]} seen_a=0 dev_links=- tls_requests=0 links_short=""
  if (( HTTPS )); then
    tls_requests=${#TLS_OBJECTS[@]}
    log "device browses $tls_requests objects over HTTPS through edge A's traffic server ($TLS_H2_REQUESTS over h2, $(( tls_requests - TLS_H2_REQUESTS )) over http/1.1)"
    browse_https a "$WORK/tls-via-a.txt"
  fi
  if (( MIGRATION )); then
    links_enough() { dev_links=$(device_links); (( dev_links >= requests + tls_requests )); }
    if ! wait_until "statetap to hold the device's links" 15 links_enough; then
      # Too few plaintext links: nothing to measure. Too few HTTPS ones only: the run goes on (the HTTPS figures
      # then show what that costs) and fails at the end.
      (( dev_links >= requests )) || die "statetap holds $dev_links links for $DEV_IP, $(( requests + tls_requests )) requests were made"
      links_short="statetap held $dev_links links for $DEV_IP at the signal, $(( requests + tls_requests )) requests were made ($tls_requests over HTTPS)"
      echo "warning: $links_short; going on" >&2
    fi
    log "statetap holds $dev_links links for the device"
  fi

  local mig_status=skipped mig_id="" ready_ms=- cp_ready_ms=- pre_objects=- pre_nm=- pre_bytes=- pre_skipped=- mig_json="{}"
  if (( MIGRATION )); then
    log "signal: MEC 012 CellChangeNotification IN_PREPARATION cell-a → cell-b for $DEV_IP"
    render cell-change.json.in "$WORK/signal.json" DEVICE="$DEV_IP" EPOCH="$(date +%s)"
    local t0 out code
    t0=$(now_ms)
    out=$(cp_call POST /v1/notifications/cell-change "$WORK/signal.json")
    code=$(tail -n1 <<<"$out")
    [[ "$code" == 202 ]] || die "the cell-change notification was answered $code: $(sed '$d' <<<"$out")"
    mig_id=$(sed '$d' <<<"$out" | jq -r '.id // empty')
    [[ -n "$mig_id" ]] || die "no migration id in the answer: $(sed '$d' <<<"$out")"
    migration_done() {
      mig_json=$(cp_call GET "/v1/migrations/$mig_id" | sed '$d')
      mig_status=$(jq -r '.status // "unknown"' <<<"$mig_json" 2>/dev/null || echo unknown)
      [[ "$mig_status" == ready || "$mig_status" == failed || "$mig_status" == cancelled ]]
    }
    wait_until "migration $mig_id to be ready" 60 migration_done || die "migration $mig_id is still $mig_status"
    ready_ms=$(( $(now_ms) - t0 ))
    printf '%s\n' "$mig_json" >"$WORK/migration.json"
    [[ "$mig_status" == ready ]] || die "migration $mig_id ended $mig_status: $mig_json"
    cp_ready_ms=$(jq -r '.timings.signal_to_ready_ms // "-"' <<<"$mig_json")
    pre_objects=$(jq -r '.prefetch.objects // "-"' <<<"$mig_json")
    pre_nm=$(jq -r '.prefetch.not_modified // "-"' <<<"$mig_json")
    pre_bytes=$(jq -r '.prefetch.bytes // "-"' <<<"$mig_json")
    pre_skipped=$(jq -r '.prefetch.skipped_uncacheable // "-"' <<<"$mig_json")
    log "migration $mig_id ready: ${cp_ready_ms} ms by statetap, ${ready_ms} ms measured here"
  fi

  local b_start tls_b_start=0; b_start=$(date +%s.%N)
  if (( MIGRATION )); then
    log "device moves to edge B and repeats its requests"
    browse b "$WORK/via-b.txt"
    if (( HTTPS )); then
      tls_b_start=$(date +%s.%N)
      log "device repeats its HTTPS requests through edge B's traffic server"
      browse_https b "$WORK/tls-via-b.txt"
    fi
  fi
  log "control: the device repeats its requests through edge C (no signal)"
  browse c "$WORK/via-c.txt"
  (( HTTPS )) && browse_https c "$WORK/tls-via-c.txt"
  log "control of the control: a second visit through C must hit (C's cache works; the uncacheable still miss)"
  browse c "$WORK/via-c2.txt"
  (( HTTPS )) && browse_https c "$WORK/tls-via-c2.txt"

  # The capture stops here: its events file and summary are complete. The traffic servers too, once B's access
  # log (the one read below) has the device's last visit: ATS writes it every ~1-2 s, and a SIGTERM does NOT flush
  # it (measured: the last ~1 s of lines were lost), whatever ats.sh's comment says.
  stop_pid "$CAPTURE" INT 15; CAPTURE=""
  if (( HTTPS )); then
    if (( MIGRATION )); then
      b_log_complete() { (( $(awk -v d="$DEV_IP:" 'index($3, d) == 1 { n++ } END { print n + 0 }' "$WORK/ats-b/log/access.log" 2>/dev/null || echo 0) >= tls_requests )); }
      wait_until "edge B's traffic server access log" 10 b_log_complete || die "edge B's traffic server access log lacks the device's requests"
    fi
    local dir stoppers=() pid
    for dir in "${ATS_DIRS[@]}"; do ats_stop "$dir" & stoppers+=($!); done       # the three at once (~1 s each)
    for pid in "${stoppers[@]}"; do wait "$pid" || true; done
    for dir in "${ATS_DIRS[@]}"; do ats_stop "$dir" || true; done                # any left: here, bounded
  fi
  seen_a=$(web_links "${EDGE_IP[a]}:80")
  local seen_b=0; (( MIGRATION )) && seen_b=$(web_links "${EDGE_IP[b]}:80")
  # Frames the XDP program steered that statetap did not decode, and the kernel's and the pipeline's drops. (With
  # the veths' offloads on, skb mode lost the 64 KB GSO frames here: steered 460, decoded 257.)
  local frames lost
  frames=$(tail -n1 "$WORK/summary.json" | jq '.packets' 2>/dev/null || echo -1)
  lost=$(tail -n1 "$WORK/summary.json" | jq '(.live.program.steered - .packets) + ([.live.queues[]
    | .kernel_rx_dropped + .kernel_rx_ring_full + .kernel_rx_invalid_descs + .ring_full_drops] | add)' 2>/dev/null || echo -1)

  # Uncacheable objects fetched on the agent's behalf: in B's log, any request for one not from the device; in
  # the origin's log, any request for one from edge B before the device itself reached B.
  local agent_uncacheable origin_uncacheable agent_requests agent_bytes
  agent_uncacheable=$(awk -v d="$DEV_IP" '$2 != d && $4 ~ /^\/(nostore|private)\// { n++ } END { print n + 0 }' "$WORK/edge-b/access.log")
  origin_uncacheable=$(awk -v b="${EDGE_UP[b]}" -v t="$b_start" '$1 < t && $2 == b && $4 ~ /^\/(nostore|private)\// { n++ } END { print n + 0 }' "$WORK/origin/access.log")
  agent_requests=$(awk -v d="$DEV_IP" '$2 != d { n++ } END { print n + 0 }' "$WORK/edge-b/access.log")
  agent_bytes=$(awk -v d="$DEV_IP" '$2 != d { n += $7 } END { print n + 0 }' "$WORK/edge-b/access.log")

  local hit_a hit_b=- hit_c hit_c2 uncached_hits cacheable=${#CACHEABLE[@]}
  hit_a=$(hit_ratio "$WORK/via-a.txt"); hit_c=$(hit_ratio "$WORK/via-c.txt"); hit_c2=$(hit_ratio "$WORK/via-c2.txt")
  uncached_hits=$(cat "$WORK"/via-*.txt | awk '$1 ~ /^\/(nostore|private)\// && $3 == "HIT"' | wc -l)
  (( MIGRATION )) && hit_b=$(hit_ratio "$WORK/via-b.txt")

  # The HTTPS round's figures: the same, from the traffic servers' access logs (client:port is field 3, the bytes
  # field 5, the client's URL field 7) and the origin's; and what the capture says of HTTPS (its `https` section).
  local tls_seen_a=0 tls_seen_a_h2=0 tls_seen_a_h1=0 tls_seen_b=0 tls_hit_a=- tls_hit_b=- tls_hit_c=- tls_hit_c2=-
  local tls_uncached_hits=0 tls_agent_requests=0 tls_agent_bytes=0 tls_agent_uncacheable=0 tls_origin_uncacheable=0
  local tls_summary=null tls_keys=null tls_cacheable=${#TLS_CACHEABLE[@]}
  if (( HTTPS )); then
    tls_seen_a=$(tls_web_links "${EDGE_IP[a]}:$TLS_PORT")
    tls_seen_a_h2=$(tls_web_links "${EDGE_IP[a]}:$TLS_PORT" h2)
    tls_seen_a_h1=$(tls_web_links "${EDGE_IP[a]}:$TLS_PORT" http/1.1)
    (( MIGRATION )) && tls_seen_b=$(tls_web_links "${EDGE_IP[b]}:$TLS_PORT")
    tls_summary=$(tail -n1 "$WORK/summary.json" | jq -c '.https // null' 2>/dev/null || echo null)
    tls_keys=$(tail -n1 "$WORK/summary.json" | jq -c '.tls_keys // null' 2>/dev/null || echo null)
    tls_hit_a=$(tls_hit_ratio "$WORK/tls-via-a.txt"); tls_hit_c=$(tls_hit_ratio "$WORK/tls-via-c.txt")
    tls_hit_c2=$(tls_hit_ratio "$WORK/tls-via-c2.txt")
    tls_uncached_hits=$(cat "$WORK"/tls-via-*.txt | awk '$1 ~ /^\/tls\/(nostore|private)\// && $3 == "hit-fresh"' | wc -l)
    if (( MIGRATION )); then
      local b_log="$WORK/ats-b/log/access.log"
      tls_hit_b=$(tls_hit_ratio "$WORK/tls-via-b.txt")
      tls_agent_requests=$(awk -v d="$DEV_IP:" 'index($3, d) != 1 { n++ } END { print n + 0 }' "$b_log")
      tls_agent_bytes=$(awk -v d="$DEV_IP:" 'index($3, d) != 1 { n += $5 } END { print n + 0 }' "$b_log")
      tls_agent_uncacheable=$(awk -v d="$DEV_IP:" 'index($3, d) != 1 && $7 ~ /\/tls\/(nostore|private)\// { n++ } END { print n + 0 }' "$b_log")
      tls_origin_uncacheable=$(awk -v b="${EDGE_UP[b]}" -v t="$tls_b_start" '$1 < t && $2 == b && $4 ~ /^\/tls\/(nostore|private)\// { n++ } END { print n + 0 }' "$WORK/origin/access.log")
    fi
  fi

  echo
  printf '%-44s %-22s %-22s\n' "" "with migration (B)" "without migration (C)"
  printf '%-44s %-22s %-22s\n' "HIT ratio on repeat, cacheable objects" \
    "$( (( MIGRATION )) && echo "$hit_b% ($(hit_count "$WORK/via-b.txt")/$cacheable)" || echo "SKIPPED")" \
    "$hit_c% ($(hit_count "$WORK/via-c.txt")/$cacheable)"
  printf '%-44s %-22s %-22s\n' "signal to ready (statetap / measured)" "$cp_ready_ms ms / $ready_ms ms" "-"
  printf '%-44s %-22s %-22s\n' "prefetched (statetap): GET, conditional" "$pre_objects (200), $pre_nm (304)" "-"
  printf '%-44s %-22s %-22s\n' "prefetched (statetap): bytes received" "$pre_bytes" "-"
  printf '%-44s %-22s %-22s\n' "prefetched (edge B's log): requests, bytes" "$agent_requests, $agent_bytes" "-"
  printf '%-44s %-22s %-22s\n' "uncacheable skipped (statetap)" "$pre_skipped" "-"
  printf '%-44s %-22s %-22s\n' "uncacheable fetched by agent (B / origin)" "$agent_uncacheable / $origin_uncacheable" "-"
  echo "first visit through A: HIT ratio $hit_a% (cold); second visit through C: $hit_c2% (its cache works);" \
       "uncacheable answers from a cache: $uncached_hits"
  echo "statetap saw $seen_a web links for $requests requests through A$( (( MIGRATION )) && echo ", $seen_b through B");" \
       "it decoded $frames frames and lost $lost"
  (( MIGRATION )) || echo "MIGRATION HALF SKIPPED: $ST has no \`agent --listen\` or no \`capture --serve\` (no agent or control plane yet)"
  echo
  if (( HTTPS )); then
    local tls_b_cell="SKIPPED" plain_b_cell="SKIPPED"
    row() { printf '%-44s %-26s %-30s\n' "$@"; }
    if (( MIGRATION )); then
      plain_b_cell="$hit_b% ($(hit_count "$WORK/via-b.txt")/$cacheable)"
      tls_b_cell="$tls_hit_b% ($(tls_hit_count "$WORK/tls-via-b.txt")/$tls_cacheable)"
    fi
    row "" "HTTP/1.1 (plaintext, :80)" "HTTPS (TLS, :$TLS_PORT)"
    row "links learned (web links seen through A)" "$seen_a/$requests" \
      "$tls_seen_a/$tls_requests ($tls_seen_a_h2 h2, $tls_seen_a_h1 http/1.1)"
    row "HIT ratio at B, with migration" "$plain_b_cell" "$tls_b_cell"
    row "HIT ratio at C, without migration" "$hit_c% ($(hit_count "$WORK/via-c.txt")/$cacheable)" \
      "$tls_hit_c% ($(tls_hit_count "$WORK/tls-via-c.txt")/$tls_cacheable)"
    row "first visit A (cold) / second visit C" "$hit_a% / $hit_c2%" "$tls_hit_a% / $tls_hit_c2%"
    row "prefetched (edge B's log): requests, bytes" "$agent_requests, $agent_bytes" "$tls_agent_requests, $tls_agent_bytes"
    row "uncacheable fetched by agent (B / origin)" "$agent_uncacheable / $origin_uncacheable" \
      "$tls_agent_uncacheable / $tls_origin_uncacheable"
    row "uncacheable answers from a cache" "$uncached_hits" "$tls_uncached_hits"
    (( MIGRATION )) && echo "the migration's prefetch (statetap, HTTP and HTTPS together): $(jq -r '.prefetch |
      "\(.total // "?") planned, \(.objects // "?") fetched (200), \(.not_modified // "?") conditional (304), \(.failed // "?") failed, \(.hosts_connected // "?") host(s) pre-connected"' <<<"$mig_json" 2>/dev/null || echo "?")"
    echo "statetap's HTTPS (edge A's key log only): $(jq -r 'if . == null then "no https section in the summary" else
      "\(.connections // "?") TLS connections, \(.connections_decrypted // "?") decrypted, \(.keys_never_came // "?") whose keys never came, \(.authentication_failures // "?") authentication failures, \(.held_overflow // "?") over the hold limit before their keys, \(.keys_late // "?") keys late but in time; \(.requests // "?") requests, \(.responses // "?") responses" end' <<<"$tls_summary");" \
         "https web links through B: $tls_seen_b (B's key log is not shipped)"
    (( MIGRATION && ! AGENT_HTTPS )) && echo "HTTPS PREFETCH NOT POSSIBLE: $ST has no \`agent --cache-https\`"
    echo
  fi

  local problems=()
  (( seen_a == requests )) || problems+=("statetap saw $seen_a web links through A for $requests requests")
  (( lost == 0 )) || problems+=("the capture lost frames or its summary is unreadable (lost: $lost)")
  (( hit_a == 0 )) || problems+=("edge A was not cold ($hit_a% HIT on the first visit)")
  (( hit_c2 == 100 )) || problems+=("edge C's cache does not work: $hit_c2% HIT on a second visit")
  (( uncached_hits == 0 )) || problems+=("$uncached_hits uncacheable answers came from a cache")
  (( hit_c <= MAX_HIT_BASELINE )) || problems+=("HIT ratio without migration is $hit_c% (> $MAX_HIT_BASELINE%)")
  if (( MIGRATION )); then
    (( seen_b == requests )) || problems+=("statetap saw $seen_b web links through B for $requests requests")
    (( hit_b >= MIN_HIT_MIGRATED )) || problems+=("HIT ratio at B with migration is $hit_b% (< $MIN_HIT_MIGRATED%)")
    (( agent_uncacheable == 0 && origin_uncacheable == 0 )) ||
      problems+=("uncacheable objects fetched before the device: $agent_uncacheable at B, $origin_uncacheable at the origin")
  elif [[ "${LAB_ALLOW_NO_AGENT:-0}" != 1 ]]; then
    problems+=("the migration half was skipped (set LAB_ALLOW_NO_AGENT=1 to accept that)")
  fi
  if (( HTTPS )); then
    [[ -z "$links_short" ]] || problems+=("$links_short")
    (( tls_seen_a == tls_requests )) || problems+=("statetap saw $tls_seen_a HTTPS web links through A for $tls_requests requests")
    (( tls_seen_a_h2 == TLS_H2_REQUESTS && tls_seen_a_h1 == tls_requests - TLS_H2_REQUESTS )) ||
      problems+=("statetap saw $tls_seen_a_h2 h2 and $tls_seen_a_h1 http/1.1 HTTPS links through A for $TLS_H2_REQUESTS and $(( tls_requests - TLS_H2_REQUESTS )) requests")
    (( tls_hit_a == 0 )) || problems+=("edge A's traffic server was not cold ($tls_hit_a% HIT on the first HTTPS visit)")
    (( tls_hit_c2 == 100 )) || problems+=("edge C's traffic server cache does not work: $tls_hit_c2% HIT on a second HTTPS visit")
    (( tls_uncached_hits == 0 )) || problems+=("$tls_uncached_hits uncacheable HTTPS answers came from a cache")
    (( tls_hit_c <= MAX_HIT_BASELINE )) || problems+=("HTTPS HIT ratio without migration is $tls_hit_c% (> $MAX_HIT_BASELINE%)")
    if (( MIGRATION )); then
      (( AGENT_HTTPS )) || problems+=("the agent has no --cache-https: HTTPS links cannot be prefetched")
      (( tls_hit_b >= MIN_HIT_MIGRATED )) || problems+=("HTTPS HIT ratio at B with migration is $tls_hit_b% (< $MIN_HIT_MIGRATED%)")
      (( tls_agent_uncacheable == 0 && tls_origin_uncacheable == 0 )) ||
        problems+=("uncacheable HTTPS objects fetched before the device: $tls_agent_uncacheable at B, $tls_origin_uncacheable at the origin")
    fi
  fi

  if (( ${#problems[@]} )); then
    for p in "${problems[@]}"; do echo "FAILED: $p" >&2; done
  else
    echo "OK: statetap saw every request$( (( HTTPS )) && echo " (HTTPS too)")$( (( MIGRATION )) && echo ", B was ready before the device arrived") and the figures are within bounds"
  fi
  local https_json=null
  if (( HTTPS )); then
    https_json=$(jq -cn --argjson requests "$tls_requests" --argjson h2 "$TLS_H2_REQUESTS" \
      --argjson cacheable "$tls_cacheable" --argjson uncacheable "${#TLS_UNCACHEABLE[@]}" \
      --argjson seen_a "$tls_seen_a" --argjson seen_a_h2 "$tls_seen_a_h2" --argjson seen_a_h1 "$tls_seen_a_h1" \
      --argjson seen_b "$tls_seen_b" --arg hit_a "$tls_hit_a" --arg hit_b "$tls_hit_b" --arg hit_c "$tls_hit_c" \
      --arg hit_c2 "$tls_hit_c2" --argjson uncached_hits "$tls_uncached_hits" \
      --argjson agent_requests "$tls_agent_requests" --argjson agent_bytes "$tls_agent_bytes" \
      --argjson agent_uncacheable "$tls_agent_uncacheable" --argjson origin_uncacheable "$tls_origin_uncacheable" \
      --argjson agent_https "$( ((AGENT_HTTPS)) && echo true || echo false)" \
      --argjson summary "$tls_summary" --argjson keys "$tls_keys" \
      --argjson mig "$(jq -c '.prefetch // null' <<<"$mig_json" 2>/dev/null || echo null)" '
      def num: tonumber? // null;
      {requests: $requests, requests_h2: $h2, requests_http1: ($requests - $h2), cacheable: $cacheable, uncacheable: $uncacheable,
       web_links_seen: {a: $seen_a, a_h2: $seen_a_h2, a_http1: $seen_a_h1, b: $seen_b},
       hit_ratio_pct: {first_visit_a: ($hit_a | num), migrated_b: ($hit_b | num), no_migration_c: ($hit_c | num),
                       second_visit_c: ($hit_c2 | num)},
       uncacheable_cache_hits: $uncached_hits, agent_cache_https: $agent_https,
       prefetch: {edge_b_log_requests: $agent_requests, edge_b_log_bytes: $agent_bytes},
       migration_prefetch: (if $mig == null then null else {total: $mig.total, failed: $mig.failed,
                            hosts_connected: $mig.hosts_connected} end),
       uncacheable_fetched_by_agent: {edge_b_log: $agent_uncacheable, origin_log: $origin_uncacheable},
       capture: $summary, tls_keys: $keys}')
  fi
  jq -cn --arg migration "$mig_status" --arg id "$mig_id" \
    --argjson requests "$requests" --argjson cacheable "$cacheable" --argjson uncacheable "${#UNCACHEABLE[@]}" \
    --argjson seen_a "$seen_a" --argjson seen_b "$seen_b" --argjson hit_a "$hit_a" --argjson hit_c "$hit_c" \
    --argjson hit_c2 "$hit_c2" --argjson uncached_hits "$uncached_hits" --argjson frames "$frames" --argjson lost "$lost" \
    --arg hit_b "$hit_b" --arg cp_ms "$cp_ready_ms" --arg ms "$ready_ms" \
    --arg objects "$pre_objects" --arg nm "$pre_nm" --arg bytes "$pre_bytes" --arg skipped "$pre_skipped" \
    --argjson agent_requests "$agent_requests" --argjson agent_bytes "$agent_bytes" \
    --argjson agent_uncacheable "$agent_uncacheable" --argjson origin_uncacheable "$origin_uncacheable" \
    --argjson https "$https_json" \
    --argjson ok "$( ((${#problems[@]} == 0)) && echo true || echo false)" '
    def num: tonumber? // null;
    {lab: "statetap-migration", ok: $ok, migration: $migration, migration_id: (if $id == "" then null else $id end),
     requests: $requests, cacheable: $cacheable, uncacheable: $uncacheable,
     web_links_seen: {a: $seen_a, b: $seen_b}, capture: {frames: $frames, lost: $lost},
     hit_ratio_pct: {first_visit_a: $hit_a, migrated_b: ($hit_b | num), no_migration_c: $hit_c, second_visit_c: $hit_c2},
     uncacheable_cache_hits: $uncached_hits,
     signal_to_ready_ms: {statetap: ($cp_ms | num), measured: ($ms | num)},
     prefetch: {objects: ($objects | num), not_modified: ($nm | num), bytes: ($bytes | num), skipped_uncacheable: ($skipped | num),
                edge_b_log_requests: $agent_requests, edge_b_log_bytes: $agent_bytes},
     uncacheable_fetched_by_agent: {edge_b_log: $agent_uncacheable, origin_log: $origin_uncacheable},
     https: $https}'
  if (( ${#problems[@]} )); then exit 1; fi
}

case "${1:-run}" in
  run) run ;;
  down) [[ $(id -u) -eq 0 ]] || { echo "error: needs root" >&2; exit 1; }; down; echo "lab removed" ;;
  -h|--help) sed -n '2,/^set -Eeuo/p' "$0" | sed '$d; s/^# \{0,1\}//' ;;
  *) echo "usage: $0 [run|down]" >&2; exit 2 ;;
esac
