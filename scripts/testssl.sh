#!/usr/bin/env bash
# Runs testssl.sh (Debian package "testssl.sh") against `warden demo` and
# fails if any weak protocol or cipher is offered. Takes a few minutes: not
# part of CI. Usage: scripts/testssl.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v testssl >/dev/null || { echo "testssl.sh is not installed (apt-get install testssl.sh)"; exit 1; }
tmp=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"' EXIT
go build -o "$tmp/warden" ./cmd/warden
port=$((20000 + RANDOM % 20000))
"$tmp/warden" demo --dir "$tmp/demo" --listen "127.0.0.1:$port" --http 127.0.0.1:0 --admin 127.0.0.1:0 >"$tmp/demo.out" 2>"$tmp/demo.err" &
pid=$!
for _ in $(seq 100); do grep -q /metrics "$tmp/demo.out" 2>/dev/null && break; sleep 0.1; done
testssl --quiet --color 0 --warnings batch --protocols --std --fs --server-preference \
  --jsonfile "$tmp/testssl.json" "127.0.0.1:$port" | tee "$tmp/testssl.txt"
python3 - "$tmp/testssl.json" <<'PY'
import json, sys
findings = json.load(open(sys.argv[1]))
want_not_offered = ["SSLv2", "SSLv3", "TLS1", "TLS1_1", "cipherlist_NULL", "cipherlist_aNULL",
                    "cipherlist_EXPORT", "cipherlist_LOW", "cipherlist_3DES_IDEA", "cipherlist_AVERAGE"]
bad = []
by_id = {f["id"]: f for f in findings}
for i in want_not_offered:
    f = by_id.get(i)
    if f is None:
        bad.append(f"{i}: not reported")
    elif "not offered" not in f["finding"]:
        bad.append(f"{i}: {f['finding']}")
for f in findings:
    if f.get("severity") in ("HIGH", "CRITICAL"):
        bad.append(f"{f['id']}: {f['severity']}: {f['finding']}")
print("\n== summary")
for i in ["TLS1_2", "TLS1_3", "FS", "cipher_order"]:
    if i in by_id:
        print(f"{i}: {by_id[i]['finding']}")
if bad:
    print("WEAK SETTINGS OFFERED:\n  " + "\n  ".join(bad))
    sys.exit(1)
print("OK: no weak protocol or cipher offered")
PY
