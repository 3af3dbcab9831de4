#!/usr/bin/env bash
# Warden mTLS benchmark (issue 3, "Performance"): keep-alive throughput and
# full mTLS handshakes with a client certificate on every connection, for
#   direct      the Go backend with RequireAndVerifyClientCert (the ceiling)
#   warden-off  Warden, listener client_auth require + route mtls policy, revocation "off"
#   warden-on   the same with revocation hard_fail from a cached CRL file (no network)
#   nginx       nginx with ssl_verify_client on + ssl_crl (same CRL)
# measured in one go on this machine, in interleaved rounds; warden-on and
# warden-off run in every round, adjacent and in alternating order
# (off,on | on,off | …) so drift cancels, and their per-round ratio is the
# "cached revocation costs under 2 % of throughput" check. See bench/README.md.
# Everything started here is stopped on exit. Tunables (environment):
#   ROUNDS=4                rounds of warden-on/off (each phase)
#   PEER_ROUNDS=2           rounds of direct and nginx (the first PEER_ROUNDS rounds)
#   KA_C=32 KA_DUR=6s WARMUP=2s   keep-alive closed loop
#   HS_C=8 HS_DUR=5s        full handshakes (X25519 offered, 1 s warm-up)
#   CRL_ENTRIES=1000        revoked serials on the client CA's CRL
#   MAX_FOREIGN=15 RETRIES=1  direct/nginx: repeat a run when other work took >15 % of the target core
#   PAIR_MAX_FOREIGN=5 PAIR_RETRIES=2  warden on/off: repeat the pair when either run saw >5 %
#   BUDGET=240              seconds (after the build) past which disturbed runs are not
#                           repeated (keep-alive phase: 60 % of it); bounds the whole run to ~5 min
#   KEEP_TMP=0              keep the temp folder (configs, logs, PKI)
#   WARDEN_ENV=             extra environment for the Warden processes only, e.g. "GOGC=400"
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT="$ROOT/bench/results"
ROUNDS=${ROUNDS:-4}
PEER_ROUNDS=${PEER_ROUNDS:-2}
KA_C=${KA_C:-32}
KA_DUR=${KA_DUR:-6s}
WARMUP=${WARMUP:-2s}
HS_C=${HS_C:-8}
HS_DUR=${HS_DUR:-5s}
CRL_ENTRIES=${CRL_ENTRIES:-1000}
MAX_FOREIGN=${MAX_FOREIGN:-15}
RETRIES=${RETRIES:-1}
PAIR_MAX_FOREIGN=${PAIR_MAX_FOREIGN:-5}
PAIR_RETRIES=${PAIR_RETRIES:-2}
BUDGET=${BUDGET:-240}
KEEP_TMP=${KEEP_TMP:-0}
WARDEN_ENV=${WARDEN_ENV:-}

# Same layout as run.sh: core 0 runs the target under test (one loaded at a
# time), core 1 the load generator and the upstream backend. Own ports, so
# it never collides with run.sh.
TARGET_CORE=0
LOAD_CORE=1
P_UPSTREAM=18450 P_DIRECT=18451 P_OFF=18452 P_ON=18453 P_NGINX=18454

TMP=$(mktemp -d /tmp/warden-mtls-bench.XXXXXX)
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
	if [ "$KEEP_TMP" = 1 ]; then echo "mtls bench: kept $TMP"; else rm -rf "$TMP"; fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '\n== %s\n' "$*" >&2; }
die() { echo "mtls bench: $*" >&2; exit 1; }

[ "$(nproc)" -ge 2 ] || die "needs 2 cores (one for the target, one for the load generator and upstream)"
command -v nginx >/dev/null || die "nginx not found (apt-get install nginx)"
command -v taskset >/dev/null || die "taskset not found (util-linux)"
for p in $P_UPSTREAM $P_DIRECT $P_OFF $P_ON $P_NGINX; do
	if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then die "port $p is in use"; fi
done

log "build ($TMP)"
cd "$ROOT"
go build -o "$TMP/bin/" ./bench/loadgen ./bench/backend ./bench/gencerts ./bench/mtlsreport
go build -o "$TMP/bin/warden" ./cmd/warden || die "./cmd/warden does not build"
B="$TMP/bin"
SECONDS=0 # the budget counts from here

log "certificates (server CA + leaves; client CA, client and revoked client certs, CRL with $CRL_ENTRIES entries)"
"$B/gencerts" -dir "$TMP/pki" -crl-entries "$CRL_ENTRIES"
PKI="$TMP/pki"
CLIENT=(-cert "$PKI/client.pem" -key "$PKI/client-key.pem")
REVOKED=(-cert "$PKI/revoked.pem" -key "$PKI/revoked-key.pem")

# probe URL [loadgen flags...]: one verified GET; exit status 0 when it got 200.
probe() {
	local u=$1; shift
	"$B/loadgen" -url "$u" -cacert "$PKI/ca.pem" -c 1 -n 1 -d 1s -warmup 0 -timeout 2s "$@" >/dev/null 2>"$TMP/probe.err"
}
wait_ready() {
	for _ in $(seq 50); do
		if probe "$@"; then return 0; fi
		sleep 0.2
	done
	cat "$TMP/probe.err" >&2
	die "$1 did not answer; logs in $TMP (KEEP_TMP=1 to keep them)"
}

log "start: upstream backend (core $LOAD_CORE); direct mTLS backend, Warden off/on, nginx (core $TARGET_CORE)"
GOMAXPROCS=1 taskset -c $LOAD_CORE "$B/backend" -addr 127.0.0.1:$P_UPSTREAM \
	-cert "$PKI/upstream.pem" -key "$PKI/upstream-key.pem" 2>"$TMP/upstream.log" &
PIDS+=($!)
GOMAXPROCS=1 taskset -c $TARGET_CORE "$B/backend" -addr 127.0.0.1:$P_DIRECT \
	-cert "$PKI/server.pem" -key "$PKI/server-key.pem" -client-ca "$PKI/client-ca.pem" 2>"$TMP/direct.log" &
PIDS+=($!)
PID_DIRECT=$!

# warden_config PORT MODE: MODE is "off" or "on".
warden_config() {
	local port=$1 mode=$2 rev='"off"'
	[ "$mode" = on ] && rev=hard_fail
	cat <<EOF
server:
  https:
    address: 127.0.0.1:$port
tls:
  profile: modern
  certificates:
    - cert_file: $PKI/server.pem
      key_file: $PKI/server-key.pem
  client_auth:
    mode: require
    ca_files: [$PKI/client-ca.pem]
upstreams:
  - name: backend
    url: https://127.0.0.1:$P_UPSTREAM
    ca_file: $PKI/ca.pem
routes:
  - name: bench
    path_prefix: /
    upstream: backend
    policies:
      - type: mtls
        ca_files: [$PKI/client-ca.pem]
        revocation: $rev
EOF
	if [ "$mode" = on ]; then
		cat <<EOF
revocation:
  crl_files: [$PKI/client-ca.crl]
  ocsp: false
  crl_distribution_points: false
EOF
	fi
	cat <<EOF
audit:
  file: $TMP/audit-$mode.jsonl
log:
  level: warn
EOF
}
for mode in off on; do
	port=$P_OFF; [ "$mode" = on ] && port=$P_ON
	warden_config "$port" "$mode" >"$TMP/warden-$mode.yaml"
	"$B/warden" validate -c "$TMP/warden-$mode.yaml" >&2 || die "warden-$mode.yaml does not validate"
	# shellcheck disable=SC2086 # WARDEN_ENV is a list of NAME=value words
	env $WARDEN_ENV GOMAXPROCS=1 taskset -c $TARGET_CORE "$B/warden" serve -c "$TMP/warden-$mode.yaml" >"$TMP/warden-$mode.log" 2>&1 &
	PIDS+=($!)
	if [ "$mode" = on ]; then PID_ON=$!; else PID_OFF=$!; fi
done

mkdir -p "$TMP/nginx"
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
    ssl_certificate $PKI/server.pem;
    ssl_certificate_key $PKI/server-key.pem;
    ssl_protocols TLSv1.3;
    ssl_session_tickets off;
    ssl_verify_client on;
    ssl_client_certificate $PKI/client-ca.pem;
    ssl_crl $PKI/client-ca.crl;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    location / {
      proxy_pass https://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      # Warden forwards the verified client certificate (RFC 9440
      # Client-Cert/Client-Cert-Chain, its default); nginx's equivalent:
      proxy_set_header X-Client-Cert \$ssl_client_escaped_cert;
      proxy_ssl_verify on;
      proxy_ssl_trusted_certificate $PKI/ca.pem;
      proxy_ssl_name localhost;
      proxy_ssl_server_name on;
      proxy_ssl_protocols TLSv1.3;
      proxy_ssl_session_reuse on;
    }
  }
}
EOF
taskset -c $TARGET_CORE nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" 2>"$TMP/nginx/stderr.log" &
PIDS+=($!)
PID_NGINX_MASTER=$!

url_of() { case $1 in direct) echo "https://127.0.0.1:$P_DIRECT/" ;; warden-off) echo "https://127.0.0.1:$P_OFF/" ;; warden-on) echo "https://127.0.0.1:$P_ON/" ;; nginx) echo "https://127.0.0.1:$P_NGINX/" ;; esac; }
wait_ready "https://127.0.0.1:$P_UPSTREAM/"
for t in direct warden-off warden-on nginx; do wait_ready "$(url_of "$t")" "${CLIENT[@]}"; done
PID_NGINX=$(pgrep -P "$PID_NGINX_MASTER" | sed -n 1p)
[ -n "$PID_NGINX" ] || die "nginx worker not found"
pid_of() { case $1 in direct) echo "$PID_DIRECT" ;; warden-off) echo "$PID_OFF" ;; warden-on) echo "$PID_ON" ;; nginx) echo "$PID_NGINX" ;; esac; }

log "sanity: a certificate whose serial is on the CRL, and no certificate at all"
CHECKS=()
check() { # check TARGET want(ok|refused) what loadgen-flags...
	local t=$1 want=$2 what=$3; shift 3
	local got=refused
	probe "$(url_of "$t")" "$@" && got=ok
	[ "$got" = "$want" ] || die "$t with $what: got $got, want $want ($(tr '\n' ' ' <"$TMP/probe.err"))"
	CHECKS+=("$t $what: $got")
	echo "  $t, $what: $got (as expected)" >&2
}
check warden-on refused "revoked cert" "${REVOKED[@]}"
check nginx refused "revoked cert" "${REVOKED[@]}"
check warden-off ok "revoked cert" "${REVOKED[@]}"
check direct ok "revoked cert" "${REVOKED[@]}"
for t in direct warden-off warden-on nginx; do check "$t" refused "no cert"; done
grep -q '"revoked"' "$TMP/audit-on.jsonl" || die "warden-on refused the revoked certificate but its audit log has no \"revoked\" reason"
echo "  warden-on audit log: $(grep -c '"revoked"' "$TMP/audit-on.jsonl") event(s) with reason \"revoked\"" >&2

RUNS="$TMP/runs.jsonl"
: >"$RUNS"
# lg1 target round max-foreign flags...: one measured run; returns 0, or 3
# when other work used more than max-foreign % of the target core.
lg1() {
	local t=$1 round=$2 mf=$3; shift 3
	local rc=0
	taskset -c $LOAD_CORE "$B/loadgen" -name "$t" -round "$round" -url "$(url_of "$t")" -watch-pid "$(pid_of "$t")" \
		-watch-core $TARGET_CORE -max-foreign "$mf" -out "$RUNS" "${CLIENT[@]}" "$@" >/dev/null || rc=$?
	[ $rc = 0 ] || [ $rc = 3 ] || die "loadgen failed for $t (exit $rc)"
	return $rc
}
# peer target round flags...: direct or nginx, repeated up to RETRIES times
# (while within BUDGET) when disturbed beyond MAX_FOREIGN.
peer() {
	local t=$1 round=$2; shift 2
	local attempt
	for attempt in $(seq $((RETRIES + 1))); do
		lg1 "$t" "$round" "$MAX_FOREIGN" "$@" && break
		[ $SECONDS -lt "$RETRY_UNTIL" ] || break
	done
}
# pair round flags...: warden-off and warden-on back to back (odd rounds off
# first, even rounds on first). A 2 % difference is smaller than what other
# work on a shared machine does to a run, so the pair is held to the
# stricter PAIR_MAX_FOREIGN and run again, both halves, up to PAIR_RETRIES
# times (while within BUDGET) when either half was disturbed.
pair() {
	local round=$1; shift
	local a=warden-off b=warden-on attempt ra rb
	[ $((round % 2)) = 0 ] && a=warden-on b=warden-off
	for attempt in $(seq $((PAIR_RETRIES + 1))); do
		ra=0 rb=0
		lg1 "$a" "$round" "$PAIR_MAX_FOREIGN" "$@" || ra=$?
		lg1 "$b" "$round" "$PAIR_MAX_FOREIGN" "$@" || rb=$?
		[ $ra = 0 ] && [ $rb = 0 ] && break
		[ $SECONDS -lt "$RETRY_UNTIL" ] && [ "$attempt" -le "$PAIR_RETRIES" ] || break
		echo "mtls bench: round $round: on/off pair disturbed, running it again" >&2
	done
}
# round R flags...: direct first and nginx last in odd rounds, the other way
# round in even rounds; both only in the first PEER_ROUNDS rounds.
round() {
	local r=$1; shift
	local first=direct last=nginx
	[ $((r % 2)) = 0 ] && first=nginx last=direct
	[ "$r" -le "$PEER_ROUNDS" ] && peer "$first" "$r" "$@"
	pair "$r" "$@"
	[ "$r" -le "$PEER_ROUNDS" ] && peer "$last" "$r" "$@"
	return 0
}

log "mTLS keep-alive throughput: c=$KA_C, $KA_DUR after $WARMUP warm-up, $ROUNDS round(s)"
# Retries stop at 60 % of BUDGET in this phase, so that the handshake
# phase still fits.
RETRY_UNTIL=$((BUDGET * 6 / 10))
for r in $(seq "$ROUNDS"); do round "$r" -mode keepalive -c "$KA_C" -n 5000000 -d "$KA_DUR" -warmup "$WARMUP" -cacert "$PKI/ca.pem"; done
log "full mTLS handshakes: X25519, c=$HS_C, $HS_DUR, $ROUNDS round(s)"
RETRY_UNTIL=$BUDGET
for r in $(seq "$ROUNDS"); do round "$r" -mode handshake -c "$HS_C" -n 1000000 -d "$HS_DUR" -warmup 1s -curves x25519 -pin-leaf "$PKI/server.pem"; done
# The revocation checker must have been consulted, and never failed open.
if grep -Eq '"revocation_(unavailable|soft_fail)"' "$TMP/audit-on.jsonl"; then
	echo "mtls bench: warning: warden-on logged revocation_unavailable/soft_fail events" >&2
fi

log "results ($SECONDS s)"
mkdir -p "$OUT"
DATE=$(date -u +%FT%TZ)
META=$(printf '{"date":"%s","cpu":"%s","cores":%d,"kernel":"%s","go":"%s","nginx":"%s","openssl":"%s","rounds":%d,"peer_rounds":%d,"ka_c":%d,"ka_dur":"%s","hs_c":%d,"hs_dur":"%s","crl_entries":%d,"seconds":%d,"layout":"target on core %d; load generator and upstream backend on core %d"}' \
	"$DATE" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" "$(nproc)" "$(uname -r)" \
	"$(go env GOVERSION)" "$(nginx -v 2>&1 | sed 's/^nginx version: //')" "$(openssl version 2>/dev/null | cut -d' ' -f1-2)" \
	"$ROUNDS" "$PEER_ROUNDS" "$KA_C" "$KA_DUR" "$HS_C" "$HS_DUR" "$CRL_ENTRIES" "$SECONDS" "$TARGET_CORE" "$LOAD_CORE")
cp "$RUNS" "$OUT/mtls-latest-runs.jsonl"
{
	echo "mTLS run $DATE on $(nproc)×$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(go env GOVERSION), $(nginx -v 2>&1 | sed 's/^nginx version: //'); CRL with $CRL_ENTRIES entries."
	echo
	"$B/mtlsreport" -json "$OUT/mtls-latest.json" -meta "$META" "$RUNS"
	echo
	echo "Sanity checks passed: $(printf '%s; ' "${CHECKS[@]}")"
} >"$OUT/mtls-latest.md"
cat "$OUT/mtls-latest.md"
echo
echo "mtls bench: wrote bench/results/mtls-latest.json, mtls-latest.md, mtls-latest-runs.jsonl ($SECONDS s)" >&2
