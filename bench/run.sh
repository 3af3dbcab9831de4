#!/usr/bin/env bash
# Warden benchmark: the direct TLS backend (ceiling), Warden and nginx as
# TLS 1.3 terminating proxies, measured in one go on this machine. nginx is
# measured in two configurations served by the same worker process: "nginx"
# (minimal proxy, port 18446) and "nginx-equiv" (also does per request what
# Warden does by default: HSTS and X-Request-Id on the response, forwarding
# headers and X-Request-Id to the upstream; port 18447). Warden is also
# measured configured like the minimal nginx: "warden-minimal", a second
# Warden process whose upstream takes none of the forwarding fields
# (forward_headers: []), in the interleaved phases only. Ports used:
# 18443 Warden, 18444 upstream, 18445 direct, 18446 nginx, 18447 nginx-equiv,
# 18448 warden-minimal.
# See bench/README.md for the method. Everything started here is stopped on
# exit. Tunables (environment):
#   IL_CYCLES=40 IL_SLICE=1s        interleaved keep-alive: cycles, one target's turn (the judged ratios)
#   IL_LAT_CYCLES=20                interleaved fixed-rate latency cycles (at RATE)
#   KA_C=32 KA_DUR=8s KA_ROUNDS=2   keep-alive closed loop: connections, length, rounds
#   RATE=2000 RATE_DUR=8s LAT_ROUNDS=2  fixed-rate latency runs
#   HS_C=8 HS_DUR=6s                full handshakes
#   WARMUP=2s                       unmeasured load before each keep-alive run
#   PROFILE=auto|0|1                perf CPU profile of Warden under keep-alive load
#   MAX_FOREIGN=15 RETRIES=2        repeat a run when other work took >15% of the target core
#   WARDEN_BUILD_TRIES=1            retries (30 s apart) if ./cmd/warden does not build
#   KEEP_TMP=0                      keep the temp folder (configs, logs, PKI)
#   WARDEN_ENV=                     extra environment for the Warden process only, e.g. "GOGC=400"
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT="$ROOT/bench/results"
KA_C=${KA_C:-32}
KA_DUR=${KA_DUR:-8s}
KA_ROUNDS=${KA_ROUNDS:-2}
IL_CYCLES=${IL_CYCLES:-40}
IL_SLICE=${IL_SLICE:-1s}
IL_LAT_CYCLES=${IL_LAT_CYCLES:-20}
RATE=${RATE:-2000}
RATE_DUR=${RATE_DUR:-8s}
LAT_ROUNDS=${LAT_ROUNDS:-2}
HS_C=${HS_C:-8}
HS_DUR=${HS_DUR:-6s}
WARMUP=${WARMUP:-2s}
PROFILE=${PROFILE:-auto}
WARDEN_BUILD_TRIES=${WARDEN_BUILD_TRIES:-1}
MAX_FOREIGN=${MAX_FOREIGN:-15}
RETRIES=${RETRIES:-2}
KEEP_TMP=${KEEP_TMP:-0}
WARDEN_ENV=${WARDEN_ENV:-}

# Core layout (2 cores): core 0 runs the target under test (one at a time is
# loaded: direct backend, Warden or nginx, each single-threaded; both nginx
# targets are server blocks of the one nginx worker); core 1 runs the load
# generator and the upstream backend.
TARGET_CORE=0
LOAD_CORE=1
P_WARDEN=18443 P_UPSTREAM=18444 P_DIRECT=18445 P_NGINX=18446 P_NGINX_EQ=18447 P_WARDEN_MIN=18448

TMP=$(mktemp -d /tmp/warden-bench.XXXXXX)
PIDS=()
cleanup() {
	local rc=$?
	set +e
	for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
	for _ in $(seq 30); do
		local alive=0
		for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
		[ "$alive" = 0 ] && break
		sleep 0.1
	done
	for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
	wait 2>/dev/null
	if [ "$KEEP_TMP" = 1 ]; then echo "bench: kept $TMP"; else rm -rf "$TMP"; fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '\n== %s\n' "$*" >&2; }
die() { echo "bench: $*" >&2; exit 1; }

[ "$(nproc)" -ge 2 ] || die "needs 2 cores (one for the target, one for the load generator and upstream)"
command -v nginx >/dev/null || die "nginx not found (apt-get install nginx)"
command -v taskset >/dev/null || die "taskset not found (util-linux)"
for p in $P_WARDEN $P_UPSTREAM $P_DIRECT $P_NGINX $P_NGINX_EQ $P_WARDEN_MIN; do
	if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then die "port $p is in use"; fi
done

log "build ($TMP)"
cd "$ROOT"
go build -o "$TMP/bin/" ./bench/loadgen ./bench/backend ./bench/gencerts ./bench/report
WARDEN_OK=0
for try in $(seq "$WARDEN_BUILD_TRIES"); do
	if go build -o "$TMP/bin/warden" ./cmd/warden 2>"$TMP/warden-build.err"; then WARDEN_OK=1; break; fi
	echo "bench: warden does not build (try $try/$WARDEN_BUILD_TRIES):" >&2
	cat "$TMP/warden-build.err" >&2
	[ "$try" -lt "$WARDEN_BUILD_TRIES" ] && sleep 30
done
B="$TMP/bin"

log "certificates (CA + ECDSA P-256 for 127.0.0.1/localhost)"
"$B/gencerts" -dir "$TMP/pki"
PKI="$TMP/pki"

# wait_ready URL: one successful verified GET within 10 s.
wait_ready() {
	for _ in $(seq 50); do
		if "$B/loadgen" -url "$1" -cacert "$PKI/ca.pem" -c 1 -n 1 -d 1s -warmup 0 -timeout 1s >/dev/null 2>&1; then return 0; fi
		sleep 0.2
	done
	die "$1 did not answer; logs in $TMP (KEEP_TMP=1 to keep them)"
}

log "start: upstream backend (core $LOAD_CORE), direct backend, Warden, nginx (core $TARGET_CORE)"
GOMAXPROCS=1 taskset -c $LOAD_CORE "$B/backend" -addr 127.0.0.1:$P_UPSTREAM \
	-cert "$PKI/upstream.pem" -key "$PKI/upstream-key.pem" 2>"$TMP/upstream.log" &
PIDS+=($!)
# The ceiling: the same backend, alone on the proxies' core, serving the
# proxies' certificate. A proxy does all of its work and more.
GOMAXPROCS=1 taskset -c $TARGET_CORE "$B/backend" -addr 127.0.0.1:$P_DIRECT \
	-cert "$PKI/server.pem" -key "$PKI/server-key.pem" 2>"$TMP/direct.log" &
PIDS+=($!)
PID_DIRECT=$!

if [ "$WARDEN_OK" = 1 ]; then
	# warden_config PORT FORWARD_HEADERS_LINE: Warden's bench config.
	warden_config() {
		cat <<EOF
server:
  https:
    address: 127.0.0.1:$1
tls:
  profile: modern
  certificates:
    - cert_file: $PKI/server.pem
      key_file: $PKI/server-key.pem
upstreams:
  - name: backend
    url: https://127.0.0.1:$P_UPSTREAM
    ca_file: $PKI/ca.pem
$2
routes:
  - name: bench
    path_prefix: /
    upstream: backend
audit:
  file: $TMP/audit-$1.jsonl
log:
  level: warn
EOF
	}
	warden_config $P_WARDEN "" >"$TMP/warden.yaml"
	# Configured like the minimal nginx: no forwarding fields to the upstream.
	warden_config $P_WARDEN_MIN "    forward_headers: []" >"$TMP/warden-minimal.yaml"
	"$B/warden" validate -c "$TMP/warden.yaml" >&2
	"$B/warden" validate -c "$TMP/warden-minimal.yaml" >&2
	# shellcheck disable=SC2086 # WARDEN_ENV is a list of NAME=value words
	env $WARDEN_ENV GOMAXPROCS=1 taskset -c $TARGET_CORE "$B/warden" serve -c "$TMP/warden.yaml" >"$TMP/warden.log" 2>&1 &
	PIDS+=($!)
	PID_WARDEN=$!
	# shellcheck disable=SC2086
	env $WARDEN_ENV GOMAXPROCS=1 taskset -c $TARGET_CORE "$B/warden" serve -c "$TMP/warden-minimal.yaml" >"$TMP/warden-minimal.log" 2>&1 &
	PIDS+=($!)
	PID_WARDEN_MIN=$!
fi

mkdir -p "$TMP/nginx"
# Shared by both nginx servers: the client-side TLS and keep-alive
# settings, and the verified, pooled TLS to the upstream.
NGINX_TLS="    ssl_certificate $PKI/server.pem;
    ssl_certificate_key $PKI/server-key.pem;
    ssl_protocols TLSv1.3;
    ssl_session_tickets off;
    keepalive_requests 1000000;
    keepalive_timeout 120s;"
NGINX_UPSTREAM_TLS="      proxy_ssl_verify on;
      proxy_ssl_trusted_certificate $PKI/ca.pem;
      proxy_ssl_name localhost;
      proxy_ssl_server_name on;
      proxy_ssl_protocols TLSv1.3;
      proxy_ssl_session_reuse on;"
cat >"$TMP/nginx/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
worker_cpu_affinity $((1 << TARGET_CORE));
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $TMP/nginx/body;
  proxy_temp_path $TMP/nginx/proxy;
  fastcgi_temp_path $TMP/nginx/fastcgi;
  uwsgi_temp_path $TMP/nginx/uwsgi;
  scgi_temp_path $TMP/nginx/scgi;
  upstream backend {
    server 127.0.0.1:$P_UPSTREAM;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:$P_NGINX ssl;
$NGINX_TLS
    location / {
      proxy_pass https://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
$NGINX_UPSTREAM_TLS
    }
  }
  # nginx-equiv: the same worker, TLS and upstream settings, plus what Warden
  # does on every request by default: HSTS and X-Request-Id on the response;
  # X-Forwarded-For/-Host/-Proto, Forwarded and X-Request-Id to the upstream.
  server {
    listen 127.0.0.1:$P_NGINX_EQ ssl;
$NGINX_TLS
    server_tokens off;
    add_header Strict-Transport-Security "max-age=63072000; includeSubDomains" always;
    add_header X-Request-Id \$request_id always;
    location / {
      proxy_pass https://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host 127.0.0.1:$P_UPSTREAM;
      proxy_set_header X-Forwarded-For \$remote_addr;
      proxy_set_header X-Forwarded-Host \$http_host;
      proxy_set_header X-Forwarded-Proto https;
      proxy_set_header Forwarded "for=\$remote_addr;proto=https;host=\"\$http_host\"";
      proxy_set_header X-Request-Id \$request_id;
$NGINX_UPSTREAM_TLS
    }
  }
}
EOF
taskset -c $TARGET_CORE nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" 2>"$TMP/nginx/stderr.log" &
PIDS+=($!)
PID_NGINX_MASTER=$!

wait_ready "https://127.0.0.1:$P_UPSTREAM/"
wait_ready "https://127.0.0.1:$P_DIRECT/"
wait_ready "https://127.0.0.1:$P_NGINX/"
wait_ready "https://127.0.0.1:$P_NGINX_EQ/"
if [ "$WARDEN_OK" = 1 ]; then
	wait_ready "https://127.0.0.1:$P_WARDEN/"
	wait_ready "https://127.0.0.1:$P_WARDEN_MIN/"
fi
PID_NGINX=$(pgrep -P "$PID_NGINX_MASTER" | sed -n 1p)
[ -n "$PID_NGINX" ] || die "nginx worker not found"

TARGETS=(direct)
[ "$WARDEN_OK" = 1 ] && TARGETS+=(warden)
TARGETS+=(nginx nginx-equiv)
# The interleaved phases (the judged ratios) also take warden-minimal.
IL_TARGETS=("${TARGETS[@]}")
[ "$WARDEN_OK" = 1 ] && IL_TARGETS+=(warden-minimal)
url_of() {
	case $1 in
	direct) echo "https://127.0.0.1:$P_DIRECT/" ;;
	warden) echo "https://127.0.0.1:$P_WARDEN/" ;;
	warden-minimal) echo "https://127.0.0.1:$P_WARDEN_MIN/" ;;
	nginx) echo "https://127.0.0.1:$P_NGINX/" ;;
	nginx-equiv) echo "https://127.0.0.1:$P_NGINX_EQ/" ;;
	*) die "url_of: unknown target $1" ;;
	esac
}
# Both nginx targets are server blocks of the one worker process.
pid_of() {
	case $1 in
	direct) echo "$PID_DIRECT" ;;
	warden) echo "$PID_WARDEN" ;;
	warden-minimal) echo "$PID_WARDEN_MIN" ;;
	nginx | nginx-equiv) echo "$PID_NGINX" ;;
	*) die "pid_of: unknown target $1" ;;
	esac
}

RUNS="$TMP/runs.jsonl"
: >"$RUNS"
# lg target flags...: one measured run. A run during which other work used
# more than MAX_FOREIGN % of the target core is recorded as disturbed and
# repeated, up to RETRIES times.
lg() {
	local t=$1; shift
	local attempt rc
	for attempt in $(seq $((RETRIES + 1))); do
		rc=0
		taskset -c $LOAD_CORE "$B/loadgen" -name "$t" -url "$(url_of "$t")" -watch-pid "$(pid_of "$t")" \
			-watch-core $TARGET_CORE -max-foreign "$MAX_FOREIGN" -out "$RUNS" "$@" >/dev/null || rc=$?
		[ $rc = 3 ] || break
	done
	[ $rc = 0 ] || [ $rc = 3 ] || die "loadgen failed for $t (exit $rc)"
}

# Interleaved: the targets take turns, one slice each per cycle, so that
# the k-th slices of two targets are seconds apart and the host's drift
# (tens of percent over a minute here) cancels in their ratio.
log "keep-alive throughput, interleaved: c=$KA_C, $IL_CYCLES cycles of one $IL_SLICE slice per target, after a $WARMUP warm-up slice each"
IL_SPEC=""
for t in "${IL_TARGETS[@]}"; do IL_SPEC+="${IL_SPEC:+,}$t=$(url_of "$t")@$(pid_of "$t")"; done
taskset -c $LOAD_CORE "$B/loadgen" -interleave "$IL_SPEC" -slice "$IL_SLICE" -cycles "$IL_CYCLES" -warmup "$WARMUP" \
	-c "$KA_C" -cacert "$PKI/ca.pem" -out "$RUNS" >/dev/null || die "interleaved loadgen failed"

log "keep-alive throughput: c=$KA_C, $KA_DUR after $WARMUP warm-up, $KA_ROUNDS round(s), targets interleaved"
for round in $(seq "$KA_ROUNDS"); do
	for t in "${TARGETS[@]}"; do lg "$t" -mode keepalive -c "$KA_C" -n 5000000 -d "$KA_DUR" -warmup "$WARMUP" -cacert "$PKI/ca.pem"; done
done

log "latency at a fixed $RATE req/s, interleaved: $IL_LAT_CYCLES cycles of one $IL_SLICE slice per target"
taskset -c $LOAD_CORE "$B/loadgen" -interleave "$IL_SPEC" -rate "$RATE" -slice "$IL_SLICE" -cycles "$IL_LAT_CYCLES" -warmup 1s \
	-c "$KA_C" -cacert "$PKI/ca.pem" -out "$RUNS" >/dev/null || die "interleaved loadgen (fixed rate) failed"

log "latency at a fixed $RATE req/s (open loop over $KA_C connections), $RATE_DUR, $LAT_ROUNDS round(s)"
for round in $(seq "$LAT_ROUNDS"); do
	for t in "${TARGETS[@]}"; do lg "$t" -mode keepalive -c "$KA_C" -rate "$RATE" -n 1000000 -d "$RATE_DUR" -warmup 1s -cacert "$PKI/ca.pem"; done
done

# Handshakes: nginx-equiv is skipped. Its TLS settings, certificate and
# worker are nginx's, and its extra headers add nothing to a handshake (only
# to the one GET that follows it), so "nginx" stands for both here.
log "full handshakes, X25519 offered only (what all can do), c=$HS_C, $HS_DUR"
for t in "${TARGETS[@]}"; do
	[ "$t" = nginx-equiv ] && continue
	lg "$t" -mode handshake -c "$HS_C" -n 1000000 -d "$HS_DUR" -warmup 1s -curves x25519 -pin-leaf "$PKI/server.pem"
done
log "full handshakes, Go's default client (X25519MLKEM768 hybrid; nginx's OpenSSL 3.0 has no ML-KEM, so Go targets only)"
for t in "${TARGETS[@]}"; do
	case $t in nginx | nginx-equiv) continue ;; esac
	lg "$t" -mode handshake -c "$HS_C" -n 1000000 -d "$HS_DUR" -warmup 1s -pin-leaf "$PKI/server.pem"
done

# Memory: peak resident set (VmHWM) of each target process over the whole
# run, read before the profile run. Warden's GC heap floor
# (server.gc_heap_floor) trades heap for fewer collections: this shows
# what it costs next to nginx's worker.
hwm_mib() { awk '/^VmHWM:/ {printf "%.1f", $2/1024}' "/proc/$1/status" 2>/dev/null || echo "?"; }
MEM_LINE="Peak RSS over the run (VmHWM): direct $(hwm_mib "$PID_DIRECT") MiB"
[ "$WARDEN_OK" = 1 ] && MEM_LINE+=", warden $(hwm_mib "$PID_WARDEN") MiB (server.gc_heap_floor: default 32MiB), warden-minimal $(hwm_mib "$PID_WARDEN_MIN") MiB"
MEM_LINE+=", nginx worker (both nginx targets) $(hwm_mib "$PID_NGINX") MiB."

mkdir -p "$OUT"
if [ "$WARDEN_OK" = 1 ] && [ "$PROFILE" != 0 ]; then
	if command -v perf >/dev/null && perf record -o "$TMP/probe.data" -- true >/dev/null 2>&1; then
		log "CPU profile of Warden under keep-alive load (perf, 6 s)"
		taskset -c $LOAD_CORE "$B/loadgen" -name warden-profiled -url "$(url_of warden)" -mode keepalive -c "$KA_C" \
			-n 5000000 -d 8s -warmup 1s -cacert "$PKI/ca.pem" >/dev/null &
		lgpid=$!
		sleep 2
		perf record -F 999 -g -o "$TMP/warden.perf" -p "$PID_WARDEN" -- sleep 6 >/dev/null 2>&1 || true
		wait "$lgpid" || true
		{
			echo "# perf CPU profile of warden (GOMAXPROCS=1, core $TARGET_CORE) under keep-alive load c=$KA_C, $(date -u +%FT%TZ)"
			echo "## self time, top 25"
			perf report -i "$TMP/warden.perf" --no-children --sort symbol -g none --stdio 2>/dev/null | grep -E '^ +[0-9]' | sed -n 1,25p || true
			echo "## inclusive time (children), top 60"
			perf report -i "$TMP/warden.perf" --children --sort symbol -g none --stdio 2>/dev/null | grep -E '^ +[0-9]' | sed -n 1,60p || true
		} >"$OUT/warden-profile.txt"
		echo "bench: profile in bench/results/warden-profile.txt" >&2
	elif [ "$PROFILE" = 1 ]; then
		echo "bench: perf is not usable here; no profile" >&2
	fi
fi

log "results"
DATE=$(date -u +%FT%TZ)
META=$(printf '{"date":"%s","cpu":"%s","cores":%d,"kernel":"%s","go":"%s","nginx":"%s","openssl":"%s","ka_c":%d,"ka_dur":"%s","ka_rounds":%d,"il_cycles":%d,"il_lat_cycles":%d,"il_slice":"%s","rate":%s,"rate_dur":"%s","hs_c":%d,"hs_dur":"%s","warden_built":%s,"layout":"target on core %d (GOMAXPROCS=1 / worker_processes 1); load generator and upstream backend on core %d"}' \
	"$DATE" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" "$(nproc)" "$(uname -r)" \
	"$(go env GOVERSION)" "$(nginx -v 2>&1 | sed 's/^nginx version: //')" "$(openssl version 2>/dev/null | cut -d' ' -f1-2)" \
	"$KA_C" "$KA_DUR" "$KA_ROUNDS" "$IL_CYCLES" "$IL_LAT_CYCLES" "$IL_SLICE" "$RATE" "$RATE_DUR" "$HS_C" "$HS_DUR" "$([ "$WARDEN_OK" = 1 ] && echo true || echo false)" \
	"$TARGET_CORE" "$LOAD_CORE")
cp "$RUNS" "$OUT/latest-runs.jsonl"
{
	echo "Run $DATE on $(nproc)×$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(go env GOVERSION), $(nginx -v 2>&1 | sed 's/^nginx version: //')."
	echo
	"$B/report" -json "$OUT/latest.json" -meta "$META" -peers nginx,nginx-equiv,warden-minimal:nginx "$RUNS"
	echo
	echo "$MEM_LINE"
} >"$OUT/latest.md"
cat "$OUT/latest.md"
echo
echo "bench: wrote bench/results/latest.json, latest.md, latest-runs.jsonl" >&2
if [ "$WARDEN_OK" != 1 ]; then
	echo "bench: Warden was NOT measured: it does not build:" >&2
	cat "$TMP/warden-build.err" >&2
	exit 1
fi
