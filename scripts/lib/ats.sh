# shellcheck shell=bash
# Apache Traffic Server (Debian 12 `trafficserver`, ATS 9.2.x) as a TLS-terminating HTTP/2 caching reverse proxy
# in a network namespace, run from a private directory (never /etc/trafficserver, /var/log/trafficserver, ...).
# Sourced by scripts/lab.sh (set -euo pipefail) and scripts/lib/ats-selftest.sh. Needs root, traffic_server,
# openssl, iproute2 (ip, ss).
#
#   ats_render DIR LISTEN_IP PORT ORIGIN_URL KEYLOG_PATH   write the whole config tree, cert and CA into DIR
#   ats_start NAMESPACE DIR                                start traffic_server in NAMESPACE, wait until it serves
#   ats_stop DIR                                           stop it (TERM, bounded wait, then KILL); quiet if not running
#
# Environment (all optional):
#   ATS_CERT_NAMES="edge.lab"   DNS names for the server certificate (first one is the CN); LISTEN_IP is added as
#                               an IP SAN. Requests for any host are served (see remap.config below).
#   ATS_CA_DIR=DIR/ssl          where the CA lives: ca.pem + ca.key there are reused if present (so several edges
#                               can share one CA and one --cacert), created otherwise.
#   ATS_NAME=basename(DIR)      proxy name shown in the Via header (tells edges apart).
#   ATS_VIA=2                   proxy.config.http.insert_response_via_str (0 none, 2 basic codes, 3 detailed).
#   ATS_CACHE_SIZE=64M          size of the cache file DIR/cache/cache.db.
#   ATS_EXTRA_RECORDS=""        extra records.config lines, appended verbatim (e.g. "CONFIG proxy.config.ssl.TLSv1_3 INT 0").
#   ATS_START_TIMEOUT=20        seconds ats_start waits for readiness (startup takes ~0.2-0.3 s on this machine).
#   ATS_STOP_TIMEOUT=10         seconds ats_stop waits after SIGTERM before SIGKILL (a clean stop takes ~1 s).
#   ATS_CLEAR_CACHE=0           1: ats_start passes -K (clear the cache at startup) - for a reused DIR.
#
# Files after ats_render (paths are fixed, relative to DIR; DIR/ats.env has them as shell assignments):
#   DIR/ssl/ca.pem (or ATS_CA_DIR/ca.pem)  give to curl --cacert     DIR/log/access.log  one ascii line per request
#   DIR/log/diags.log, DIR/log/traffic.out  ATS's own logs           DIR/ats.pid         written by ats_start
#   KEYLOG_PATH                             TLS key log (NSS format), opened O_APPEND 0600 by ATS, written at handshake
#
# Cache: a fresh DIR per run starts with an empty cache. For a reused DIR, either ATS_CLEAR_CACHE=1 ats_start, or
# delete DIR/cache/cache.db while ATS is stopped (ATS recreates and clears it at the next start). A plain restart
# is neither: objects cached seconds before the stop were gone afterwards (not yet written out), older ones may
# survive (the cache directory is synced every 60 s).
#
# Process facts this relies on: traffic_server runs in the foreground (no daemon mode; traffic_manager is not
# needed); `ip netns exec` execs it, so the PID of the background job is traffic_server's own PID; its thread name
# is [TS_MAIN], so `pgrep traffic_server` does NOT find it (use `pgrep -f` or this file's ats.pid).

ATS_BIN=${ATS_BIN:-/usr/bin/traffic_server}
ATS_PLUGIN_DIR=${ATS_PLUGIN_DIR:-/usr/lib/trafficserver/modules}
ATS_BODY_FACTORY=${ATS_BODY_FACTORY:-/etc/trafficserver/body_factory}

_ats_err() { printf 'ats: %s\n' "$*" >&2; }

# ats_render DIR LISTEN_IP PORT ORIGIN_URL KEYLOG_PATH
ats_render() {
  if (( $# != 5 )); then _ats_err "usage: ats_render DIR LISTEN_IP PORT ORIGIN_URL KEYLOG_PATH"; return 2; fi
  local dir=$1 ip=$2 port=$3 origin=$4 keylog=$5
  local names=${ATS_CERT_NAMES:-edge.lab} name=${ATS_NAME:-} via=${ATS_VIA:-2} size=${ATS_CACHE_SIZE:-64M}
  [[ "$dir" == /* && "$keylog" == /* ]] || { _ats_err "DIR and KEYLOG_PATH must be absolute"; return 2; }
  [[ "$origin" == http://* || "$origin" == https://* ]] || { _ats_err "ORIGIN_URL must be http(s)://host[:port]/"; return 2; }
  [[ "$origin" == */ ]] || origin="$origin/"
  [[ "$port" =~ ^[0-9]+$ ]] || { _ats_err "PORT must be a number"; return 2; }
  [[ -d "$ATS_BODY_FACTORY" ]] || { _ats_err "no $ATS_BODY_FACTORY (is trafficserver installed?)"; return 1; }
  [[ -n "$name" ]] || name=$(basename "$dir")
  local ca_dir=${ATS_CA_DIR:-$dir/ssl}
  mkdir -p "$dir"/{etc,log,run,cache,var,ssl} "$(dirname "$keylog")" "$ca_dir" || return 1

  # --- Layout. runroot.yaml replaces every compiled-in path (Debian's are absolute: /etc/trafficserver, /run/
  # trafficserver, /var/cache/trafficserver, ...), which TS_ROOT alone would not move. Passed as
  # --run-root=DIR/runroot.yaml. Binaries and plugins stay in /usr. (`traffic_layout init --path` is no use here: it
  # copies 15 MB of binaries and keeps Debian's absolute /etc, /var paths.) runtimedir holds server.lock, so two
  # instances never collide.
  cat >"$dir/runroot.yaml" <<EOF || return 1
prefix: $dir
exec_prefix: /usr
bindir: /usr/bin
sbindir: /usr/sbin
sysconfdir: $dir/etc
datadir: $dir/var
includedir: /usr/include
libdir: /usr/lib/trafficserver
libexecdir: $ATS_PLUGIN_DIR
localstatedir: $dir/var
runtimedir: $dir/run
logdir: $dir/log
cachedir: $dir/cache
EOF
  # Error pages (404 for an unmapped URL, 502 when the origin is down, ...) come from here; copied so DIR is
  # self-contained.
  rm -rf "$dir/etc/body_factory" && cp -r "$ATS_BODY_FACTORY" "$dir/etc/body_factory" || return 1

  # --- Certificates: a small CA (reused from ATS_CA_DIR if there) and a server certificate signed by it, with a
  # subjectAltName for every name in ATS_CERT_NAMES and for LISTEN_IP. RSA so the TLS 1.2 ECDHE-RSA-* suites work.
  local cn=${names%% *} san="" n
  for n in $names; do san+="DNS:$n,"; done
  san+="IP:$ip"
  if [[ ! -s "$ca_dir/ca.pem" || ! -s "$ca_dir/ca.key" ]]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=statetap lab CA" \
      -keyout "$ca_dir/ca.key" -out "$ca_dir/ca.pem" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null \
      || { _ats_err "openssl: cannot create the CA in $ca_dir"; return 1; }
  fi
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$cn" -keyout "$dir/ssl/server.key" -out "$dir/ssl/server.csr" \
    2>/dev/null || { _ats_err "openssl: cannot create the server key"; return 1; }
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' \
    "$san" >"$dir/ssl/server.ext"
  openssl x509 -req -in "$dir/ssl/server.csr" -CA "$ca_dir/ca.pem" -CAkey "$ca_dir/ca.key" -CAcreateserial \
    -days 30 -extfile "$dir/ssl/server.ext" -out "$dir/ssl/server.pem" 2>/dev/null \
    || { _ats_err "openssl: cannot sign the server certificate"; return 1; }
  [[ "$ca_dir" == "$dir/ssl" ]] || cp "$ca_dir/ca.pem" "$dir/ssl/ca.pem"

  # --- records.config (9.x format: CONFIG name TYPE value; records.yaml only arrives in 10.x).
  cat >"$dir/etc/records.config" <<EOF || return 1
# Rendered by scripts/lib/ats.sh. Unlisted settings keep ATS's compiled defaults (not Debian's /etc ones).

# TLS only, on LISTEN_IP only (ip-in=; a bare leading "IP:" is silently ignored and binds 0.0.0.0). ALPN tags must
# be "h2" / "http/1.1" ("http/2" is not a tag: it is ignored without a warning and only HTTP/1.1 is offered).
CONFIG proxy.config.http.server_ports STRING $port:ip-in=$ip:ssl:proto=h2;http/1.1
# ssl_multicert.config names its files relative to these directories.
CONFIG proxy.config.ssl.server.cert.path STRING $dir/ssl
CONFIG proxy.config.ssl.server.private_key.path STRING $dir/ssl
# NSS key log of every TLS session (client side and, if any, origin side). ATS writes each line synchronously from
# OpenSSL's keylog callback, during the handshake: the lines are there before any application data flows.
CONFIG proxy.config.ssl.keylog_file STRING $keylog

# We run as root in a namespace. "#-1" means "do not change user". Without this line the compiled default makes
# traffic_server exit 70 ("not designed to serve pages while running as root"), and so does "root"; a real user
# (Debian's "trafficserver") would need DIR/run, DIR/log, DIR/cache chowned to it.
CONFIG proxy.config.admin.user_id STRING #-1
# traffic_crashlog would be spawned at startup; as root with user "#-1" it fails its user lookup and writes a bogus
# crash-*.log. Not spawned at all with NULL.
CONFIG proxy.config.crash_log_helper STRING NULL

# A reverse proxy: only requests matching remap.config are served (others get 404 ERR_INVALID_URL).
CONFIG proxy.config.reverse_proxy.enabled INT 1
CONFIG proxy.config.url_remap.remap_required INT 1
# Origin gets Host: <origin host:port> (0) rather than the client's Host (1); the cache key is the remapped URL.
CONFIG proxy.config.url_remap.pristine_host_hdr INT 0

# Caching. required_headers 2: cache only responses with an explicit lifetime (max-age/Expires), like nginx's
# proxy_cache without proxy_cache_valid; 1 would also cache on Last-Modified heuristics, 0 anything.
CONFIG proxy.config.http.cache.http INT 1
CONFIG proxy.config.http.cache.required_headers INT 2
# Open the proxy port only once the cache is ready (otherwise the first requests can be served uncached) and exit
# if no cache storage could be initialized, so a broken cache fails ats_start instead of producing misses.
CONFIG proxy.config.http.wait_for_cache INT 2

# Via on responses: "http/1.1 NAME (ApacheTrafficServer/9.2.9 [cMsSfW])" on a miss, [cHs f ] / [cRs f ] on a
# disk / RAM hit (decode with traffic_via). NAME tells the edges apart.
CONFIG proxy.config.http.insert_response_via_str INT $via
CONFIG proxy.config.proxy_name STRING $name

# Logs into DIR/log (it must exist). With these two, access-log lines reach the disk within ~2 s (measured 1.7 s;
# the defaults, 5 s each, take several seconds). A SIGTERM does NOT flush them: in the
# migration lab the lines of the last ~1 s before ats_stop were lost (wait for the lines you need, then stop).
CONFIG proxy.config.log.logfile_dir STRING $dir/log
CONFIG proxy.config.log.max_secs_per_buffer INT 1
CONFIG proxy.config.log.periodic_tasks_interval INT 1
# Logging stops when free space drops below the headroom (default 1000 MB): keep it small for a lab disk.
CONFIG proxy.config.log.max_space_mb_headroom INT 10

# One event thread is plenty for a lab (default: one per core), and keeps 3 edges on 2 cores quiet.
CONFIG proxy.config.exec_thread.autoconfig INT 0
CONFIG proxy.config.exec_thread.limit INT 1
# The default (30000) exceeds the fd limit and only produces a startup WARNING.
CONFIG proxy.config.net.connections_throttle INT 1000
EOF
  [[ -z "${ATS_EXTRA_RECORDS:-}" ]] || printf '%s\n' "$ATS_EXTRA_RECORDS" >>"$dir/etc/records.config"

  # --- remap.config: the certificate names explicitly, then any other host on this port. A "from" URL without a
  # port means 443, so the port must be in the rule (regex_map's regex applies to the host only).
  local hp=":$port"; [[ "$port" == 443 ]] && hp=""
  {
    echo "# Rendered by scripts/lib/ats.sh: every host on this port goes to one origin (plain HTTP, by IP: no DNS)."
    for n in $names; do echo "map https://$n$hp/ $origin"; done
    echo "regex_map https://.*$hp/ $origin"
  } >"$dir/etc/remap.config"

  # One certificate for every SNI name and none (dest_ip=*).
  echo "dest_ip=* ssl_cert_name=server.pem ssl_key_name=server.key" >"$dir/etc/ssl_multicert.config"

  # A plain file as the cache "disk" (created and cleared at first start).
  echo "$dir/cache $size" >"$dir/etc/storage.config"

  # X-Cache on every response: header_rewrite as a global plugin, rule at SEND_RESPONSE_HDR_HOOK. %{CACHE} is the
  # cache lookup result: miss, hit-fresh, hit-stale, skipped, or none (no lookup, e.g. an unmapped URL).
  echo "header_rewrite.so $dir/etc/xcache.conf" >"$dir/etc/plugin.config"
  printf '%s\n' 'cond %{SEND_RESPONSE_HDR_HOOK}' 'set-header X-Cache %{CACHE}' >"$dir/etc/xcache.conf"

  # ip_allow.yaml is mandatory: if it is missing, ATS blocks every client ("All IP Addresses will be blocked") and
  # clients just see the connection closed. The namespace is private, so allow everything from anywhere.
  cat >"$dir/etc/ip_allow.yaml" <<'EOF'
ip_allow:
  - apply: in
    ip_addrs: 0/0
    action: allow
    methods: ALL
  - apply: in
    ip_addrs: ::/0
    action: allow
    methods: ALL
EOF

  # Access log: ascii (the default squid log is binary, squid.blog, readable only with traffic_logcat). Fields:
  # time(epoch.ms) ms-spent client:port result/status bytes method client-URL remapped-URL client-protocol(http/2,
  # http/1.1) TLS-version cipher hierarchy/server X-Cache content-type (last: it may contain spaces).
  # result is TCP_MISS, TCP_HIT, TCP_MEM_HIT (RAM cache), TCP_REFRESH_HIT, ERR_INVALID_URL, ...
  cat >"$dir/etc/logging.yaml" <<'EOF'
logging:
  formats:
    - name: lab
      format: '%<cqtq> %<ttms> %<chi>:%<chp> %<crc>/%<pssc> %<psql> %<cqhm> %<cquuc> %<cquc> %<cqpv> %<cqssv> %<cqssc> %<phr>/%<shn> %<{X-Cache}psh> %<psct>'
  logs:
    - filename: access
      format: lab
      mode: ascii
EOF
  # Present but empty, so diags.log is not full of "Cannot open config file" warnings.
  local f
  for f in cache.config parent.config volume.config hosting.config; do : >"$dir/etc/$f"; done

  # What callers need, as shell assignments (source it, or read the fixed paths above).
  {
    printf 'ATS_DIR=%q\n' "$dir"
    printf 'ATS_LISTEN=%q\n' "$ip:$port"
    printf 'ATS_ORIGIN=%q\n' "$origin"
    printf 'ATS_CA=%q\n' "$dir/ssl/ca.pem"
    printf 'ATS_CERT_NAME=%q\n' "$cn"
    printf 'ATS_KEYLOG=%q\n' "$keylog"
    printf 'ATS_ACCESS_LOG=%q\n' "$dir/log/access.log"
    printf 'ATS_DIAGS_LOG=%q\n' "$dir/log/diags.log"
  } >"$dir/ats.env"
}

# _ats_alive PID: the process exists and is not a zombie (a process whose parent shell is gone may stay a zombie
# for a while; kill -0 succeeds on those).
_ats_alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ "${stat:0:1}" != Z ]]
}

# _ats_ours PID DIR: PID is the traffic_server started for DIR (guards against a reused PID).
_ats_ours() {
  local cmd
  cmd=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) || return 1
  [[ "$cmd" == *traffic_server*"--run-root=$2/runroot.yaml"* ]]
}

_ats_logs_tail() {
  local dir=$1 f
  for f in "$dir/log/diags.log" "$dir/log/traffic.out" "$dir/log/error.log"; do
    [[ -s "$f" ]] || continue
    echo "--- tail of $f" >&2
    tail -n 25 "$f" | tr -cd '\11\12\15\40-\176' >&2   # traffic.out can hold binary debug output
  done
}

# ats_start NAMESPACE DIR
ats_start() {
  if (( $# != 2 )); then _ats_err "usage: ats_start NAMESPACE DIR"; return 2; fi
  local ns=$1 dir=$2 timeout=${ATS_START_TIMEOUT:-20}
  [[ -s "$dir/runroot.yaml" && -s "$dir/etc/records.config" ]] || { _ats_err "$dir is not rendered (ats_render)"; return 1; }
  ip netns pids "$ns" >/dev/null 2>&1 || { _ats_err "no network namespace $ns"; return 1; }
  local pid
  if [[ -s "$dir/ats.pid" ]]; then
    pid=$(cat "$dir/ats.pid")
    if _ats_alive "$pid" && _ats_ours "$pid" "$dir"; then _ats_err "already running for $dir (pid $pid)"; return 1; fi
    rm -f "$dir/ats.pid"
  fi
  mkdir -p "$dir/log" "$dir/run" "$dir/cache"
  # The listen address, to check the socket (no client connection: nothing extra on the wire or in the key log).
  local port ip
  port=$(sed -n 's/^CONFIG proxy.config.http.server_ports STRING \([0-9]*\):ip-in=\([^:]*\):.*/\1/p' "$dir/etc/records.config")
  ip=$(sed -n 's/^CONFIG proxy.config.http.server_ports STRING \([0-9]*\):ip-in=\([^:]*\):.*/\2/p' "$dir/etc/records.config")
  # Readiness is judged on what this start appends to diags.log (the file survives restarts of a reused DIR).
  local off=0
  [[ -f "$dir/log/diags.log" ]] && off=$(stat -c %s "$dir/log/diags.log")
  local args=("--run-root=$dir/runroot.yaml" --bind_stdout "$dir/log/traffic.out" --bind_stderr "$dir/log/traffic.out")
  [[ "${ATS_CLEAR_CACHE:-0}" == 1 ]] && args+=(--clear_cache)
  # cd: ATS also looks for a runroot.yaml in the cwd and its parents; make that DIR too. exec: the job's PID is
  # traffic_server's (ip netns exec execs it as well).
  ( cd "$dir" && exec ip netns exec "$ns" "$ATS_BIN" "${args[@]}" ) </dev/null >/dev/null 2>&1 &
  pid=$!
  echo "$pid" >"$dir/ats.pid"
  local deadline=$(( $(date +%s) + timeout )) ready=0 new why="not ready after ${timeout}s"
  while (( $(date +%s) <= deadline )); do
    if ! _ats_alive "$pid"; then break; fi
    new=$(tail -c +"$(( off + 1 ))" "$dir/log/diags.log" 2>/dev/null || true)
    # A port that cannot be bound is only an ERROR: ATS keeps running and still says "fully initialized".
    if [[ "$new" == *"unable to listen on port"* ]]; then why="cannot listen on ${ip:-?}:${port:-?}"; break; fi
    if [[ "$new" == *"Traffic Server is fully initialized"* ]]; then
      # (not `ss | grep -q`: with pipefail, grep -q closing the pipe early can make the pipeline fail)
      if [[ -z "$port" || "$(ip netns exec "$ns" ss -Hltn "sport = :$port" 2>/dev/null)" == *"$ip:$port "* ]]; then
        ready=1; break
      fi
    fi
    sleep 0.05
  done
  if (( ready )); then return 0; fi
  if _ats_alive "$pid"; then
    _ats_err "traffic_server (pid $pid, netns $ns): $why; stopping it"
  else
    local rc=0; wait "$pid" 2>/dev/null || rc=$?
    _ats_err "traffic_server (netns $ns) exited during startup (status $rc)"
  fi
  ats_stop "$dir"
  _ats_logs_tail "$dir"
  return 1
}

# ats_stop DIR: SIGTERM, wait up to ATS_STOP_TIMEOUT s, then SIGKILL. Returns 0 once no traffic_server of DIR runs.
ats_stop() {
  if (( $# != 1 )); then _ats_err "usage: ats_stop DIR"; return 2; fi
  local dir=$1 timeout=${ATS_STOP_TIMEOUT:-10} pid i sig
  [[ -s "$dir/ats.pid" ]] || return 0
  pid=$(cat "$dir/ats.pid")
  if ! _ats_alive "$pid" || ! _ats_ours "$pid" "$dir"; then
    wait "$pid" 2>/dev/null || true
    rm -f "$dir/ats.pid"; return 0
  fi
  for sig in TERM KILL; do
    kill "-$sig" "$pid" 2>/dev/null || true
    for (( i = 0; i < timeout * 10; i++ )); do _ats_alive "$pid" || break; sleep 0.1; done
    _ats_alive "$pid" || break
    [[ "$sig" == TERM ]] && _ats_err "traffic_server pid $pid still running ${timeout}s after SIGTERM; SIGKILL"
    timeout=2
  done
  wait "$pid" 2>/dev/null || true   # reap it if it is our child
  if _ats_alive "$pid"; then _ats_err "traffic_server pid $pid survived SIGKILL"; return 1; fi
  rm -f "$dir/ats.pid"
}
