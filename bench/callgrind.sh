#!/usr/bin/env bash
# Instructions per keep-alive request of one or more Warden binaries,
# counted by valgrind's callgrind (user space only), which does not depend
# on what else runs on the machine. For each binary: two bounded runs
# (N1 and N2 requests, c=8 kept-alive conns, after one warm-up request)
# under callgrind; instructions per request = (Ir(N2) - Ir(N1)) / (N2 - N1),
# so start-up, handshakes and pool dials cancel out. See bench/README.md.
#
# usage: bench/callgrind.sh BINARY [BINARY...]   e.g. two builds, old and new
# env:   N1=500 N2=2500, KEEP_TMP=0. Ports 18460-18461 on 127.0.0.1.
#
# GODEBUG=asyncpreemptoff=1: callgrind aborts on Go's preemption signals.
# The counts are dumped with callgrind_control and the process is then
# killed: callgrind also aborts on the signal Warden's shutdown handles.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N1=${N1:-500}
N2=${N2:-2500}
KEEP_TMP=${KEEP_TMP:-0}
[ $# -ge 1 ] || { echo "usage: $0 BINARY [BINARY...]" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "valgrind not found (apt-get install valgrind)" >&2; exit 1; }

TMP=$(mktemp -d /tmp/warden-callgrind.XXXXXX)
PIDS=()
cleanup() {
	local rc=$?
	for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [ "$KEEP_TMP" = 1 ]; then echo "callgrind: kept $TMP" >&2; else rm -rf "$TMP"; fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

(cd "$ROOT" && go build -o "$TMP/bin/" ./bench/loadgen ./bench/backend ./bench/gencerts)
B="$TMP/bin"
"$B/gencerts" -dir "$TMP/pki" >/dev/null
PKI="$TMP/pki"

# count BINARY N: prints the instructions of a run serving N requests.
count() {
	local bin=$1 n=$2 d
	d=$(mktemp -d "$TMP/run.XXXX")
	cat >"$d/w.yaml" <<EOF
server:
  https:
    address: 127.0.0.1:18460
tls:
  profile: modern
  certificates:
    - cert_file: $PKI/server.pem
      key_file: $PKI/server-key.pem
upstreams:
  - name: backend
    url: https://127.0.0.1:18461
    ca_file: $PKI/ca.pem
routes:
  - name: bench
    path_prefix: /
    upstream: backend
audit:
  file: $d/audit.jsonl
log:
  level: warn
EOF
	GOMAXPROCS=1 "$B/backend" -addr 127.0.0.1:18461 -cert "$PKI/upstream.pem" -key "$PKI/upstream-key.pem" 2>"$d/up.log" &
	local up=$!
	PIDS+=("$up")
	GODEBUG=asyncpreemptoff=1 GOMAXPROCS=1 valgrind --tool=callgrind --callgrind-out-file="$d/cg.out" \
		"$bin" serve -c "$d/w.yaml" >"$d/w.log" 2>&1 &
	local w=$!
	PIDS+=("$w")
	local ok=0
	for _ in $(seq 120); do
		if "$B/loadgen" -url https://127.0.0.1:18460/ -cacert "$PKI/ca.pem" -c 1 -n 1 -d 5s -warmup 0 -timeout 5s >/dev/null 2>&1; then ok=1; break; fi
		sleep 0.5
	done
	[ "$ok" = 1 ] || { echo "callgrind: $bin did not answer; log in $d/w.log" >&2; KEEP_TMP=1; exit 1; }
	"$B/loadgen" -url https://127.0.0.1:18460/ -cacert "$PKI/ca.pem" -c 8 -n "$n" -d 300s -warmup 0 -timeout 20s >"$d/lg.json" 2>"$d/lg.err"
	callgrind_control -d "$w" >/dev/null 2>&1
	kill -KILL "$w" "$up" 2>/dev/null || true
	wait "$w" "$up" 2>/dev/null || true
	grep -h '^summary:' "$d"/cg.out.* | awk '{print $2}'
}

printf '%-40s %14s\n' binary "Ir/request"
for bin in "$@"; do
	a=$(count "$bin" "$N1")
	b=$(count "$bin" "$N2")
	printf '%-40s %14d\n' "$(basename "$bin")" $(((b - a) / (N2 - N1)))
done
