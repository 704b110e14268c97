#!/usr/bin/env bash
# Migration benchmark (issue 6): signal → ready against the number of links, the transfer's size and time, and the
# signals per second the control plane accepts — `statetap bench-migration` against a real edge cache on loopback.
#
# Starts two nginx processes on 127.0.0.1 (ports picked free): an origin that answers any path with the same small
# object (OBJECT_BYTES, default 1024) and `Cache-Control: public, max-age=600`, and an edge cache (proxy_cache,
# key $host$request_uri, `X-Cache-Status`) in front of it, cache and config in a temp dir; checks that the header
# is sent and that a second GET is a HIT; then runs the benchmark against the cache. Every run migrates URLs under
# its own prefix, so every run is cold at the cache (miss → origin) without restarting nginx. nginx and the temp
# dir are removed on exit, however the script ends.
#
#   Benchmarks/scripts/migration-bench.sh [bench-migration flags…]   e.g. --links 100,1000,10000 --rounds 3
# Environment: BIN (a built statetap; else built here, release, in SCRATCH, default .build), OBJECT_BYTES (1024).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
object_bytes="${OBJECT_BYTES:-1024}"

command -v nginx >/dev/null || { echo "migration-bench: nginx is not installed" >&2; exit 1; }
command -v curl >/dev/null || { echo "migration-bench: curl is not installed" >&2; exit 1; }
command -v python3 >/dev/null || { echo "migration-bench: python3 is not installed" >&2; exit 1; }

if [[ -z "${BIN:-}" ]]; then
    scratch="${SCRATCH:-$root/.build}"
    swift build -c release --package-path "$root" --scratch-path "$scratch" --product statetap >&2
    BIN="$(swift build -c release --package-path "$root" --scratch-path "$scratch" --show-bin-path)/statetap"
fi
[[ -x "$BIN" ]] || { echo "migration-bench: $BIN is not an executable" >&2; exit 1; }

tmp="$(mktemp -d /tmp/statetap-migration-bench.XXXXXX)"
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1]);s.close()'; }
origin_port="$(free_port)"
cache_port="$(free_port)"
while [[ "$cache_port" == "$origin_port" ]]; do cache_port="$(free_port)"; done

mkdir -p "$tmp/www" "$tmp/cache" "$tmp/origin" "$tmp/edge"
head -c "$object_bytes" /dev/urandom >"$tmp/www/object.bin"

common() {  # $1: the instance's own dir (temp paths, pid, error log)
    cat <<EOF
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 16384;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 8192; }
EOF
}
temp_paths() {
    cat <<EOF
    access_log off;
    client_body_temp_path $1/body;
    proxy_temp_path $1/proxy;
    fastcgi_temp_path $1/fastcgi;
    uwsgi_temp_path $1/uwsgi;
    scgi_temp_path $1/scgi;
EOF
}

{
    common "$tmp/origin"
    echo "http {"
    temp_paths "$tmp/origin"
    cat <<EOF
    default_type application/octet-stream;
    keepalive_requests 100000;
    server {
        listen 127.0.0.1:$origin_port backlog=4096;
        root $tmp/www;
        location / {
            add_header Cache-Control "public, max-age=600" always;
            try_files /object.bin =404;
        }
    }
}
EOF
} >"$tmp/origin.conf"

{
    common "$tmp/edge"
    echo "http {"
    temp_paths "$tmp/edge"
    cat <<EOF
    proxy_cache_path $tmp/cache levels=1:2 keys_zone=edge:64m max_size=4g inactive=60m use_temp_path=off;
    upstream origin {
        server 127.0.0.1:$origin_port;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$cache_port backlog=4096;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_cache edge;
            proxy_cache_key \$host\$request_uri;
            proxy_cache_valid 200 10m;
            add_header X-Cache-Status \$upstream_cache_status always;
        }
    }
}
EOF
} >"$tmp/edge.conf"

nginx -t -q -p "$tmp/origin" -e "$tmp/origin/error.log" -c "$tmp/origin.conf"
nginx -t -q -p "$tmp/edge" -e "$tmp/edge/error.log" -c "$tmp/edge.conf"
nginx -p "$tmp/origin" -e "$tmp/origin/error.log" -c "$tmp/origin.conf" &
pids+=($!)
nginx -p "$tmp/edge" -e "$tmp/edge/error.log" -c "$tmp/edge.conf" &
pids+=($!)

wait_port() {
    for _ in $(seq 100); do
        curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$1/" && return 0
        sleep 0.1
    done
    echo "migration-bench: nothing answers on 127.0.0.1:$1 after 10 s" >&2
    cat "$tmp"/origin/error.log "$tmp"/edge/error.log >&2 2>/dev/null || true
    exit 1
}
wait_port "$origin_port"
wait_port "$cache_port"

# The origin sends Cache-Control; the cache stores the object (MISS, then HIT).
headers="$(curl -s -D - -o /dev/null --max-time 2 -H 'Host: check.example' "http://127.0.0.1:$origin_port/any/path")"
grep -qi '^cache-control: public, max-age=600' <<<"$headers" \
    || { echo "migration-bench: the origin sends no Cache-Control:"$'\n'"$headers" >&2; exit 1; }
first="$(curl -s -D - -o /dev/null --max-time 2 -H 'Host: check.example' "http://127.0.0.1:$cache_port/check/1" | tr -d '\r' | grep -i '^x-cache-status' || true)"
second="$(curl -s -D - -o /dev/null --max-time 2 -H 'Host: check.example' "http://127.0.0.1:$cache_port/check/1" | tr -d '\r' | grep -i '^x-cache-status' || true)"
[[ "$first" == *MISS* && "$second" == *HIT* ]] \
    || { echo "migration-bench: the cache does not cache (first: '$first', second: '$second')" >&2; exit 1; }
echo "origin 127.0.0.1:$origin_port ($object_bytes-byte object, Cache-Control sent), cache 127.0.0.1:$cache_port (MISS then HIT checked); $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"

status=0
"$BIN" bench-migration --cache "http://127.0.0.1:$cache_port" --object-bytes "$object_bytes" "$@" || status=$?
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg); cache on disk: $(du -sh "$tmp/cache" | cut -f1)"
exit $status
