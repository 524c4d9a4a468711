#!/usr/bin/env bash
# Runs `cargo bench -p djinn-hook-sign` between two runs of `openssl speed -hmac sha256` at the
# same sizes, and prints a Markdown table of throughputs and ratios.
#
#   crates/djinn-hook-sign/benches/compare.sh            # from anywhere in the workspace
#   OPENSSL_SECONDS=3 crates/djinn-hook-sign/benches/compare.sh
#
# openssl's figure is the better of its two runs (before and after the bench), so a busy
# machine can only make our ratio look worse, never better. Needs cargo, openssl and python3.
set -euo pipefail

cd "$(dirname "$0")/../../.."
sizes=(64 2048 16384 1048576)
seconds=${OPENSSL_SECONDS:-2}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

openssl_speed() { # writes "<bytes> <bytes per second>" lines
    for n in "${sizes[@]}"; do
        openssl speed -mr -seconds "$seconds" -bytes "$n" -hmac sha256 2>/dev/null |
            awk -F: -v n="$n" '/^\+F:/ { print n, $4 }'
    done
}

cargo bench -p djinn-hook-sign --bench sign --no-run >/dev/null 2>&1
echo "# $(openssl version)" >&2
echo "# openssl speed, before the bench ..." >&2
openssl_speed >"$out/openssl-before"
echo "# cargo bench -p djinn-hook-sign ..." >&2
cargo bench -p djinn-hook-sign --bench sign -- --color never --sample-count 500 --sample-size 16 >"$out/divan" 2>/dev/null
echo "# openssl speed, after the bench ..." >&2
openssl_speed >"$out/openssl-after"

python3 - "$out" <<'PY'
import re, sys
out = sys.argv[1]
units = {"ps": 1e-12, "ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}

# Median time per (bench, size) from divan's tree: a bench row, then its argument rows.
median, bench = {}, None
for line in open(f"{out}/divan", encoding="utf-8"):
    head = re.match(r"^[├╰]─ (\w+)", line)
    if head:
        bench = head.group(1)
        continue
    # "│  ├─ 64   fastest │ slowest │ median │ mean │ samples │ iters"
    row = re.match(r"^[│ ]\s+[├╰]─ (\d+)\s+(.*)$", line)
    if row and bench:
        value, unit = row.group(2).split("│")[2].split()
        median[(bench, int(row.group(1)))] = float(value) * units[unit]

def openssl(name):
    return {int(n): float(v) for n, v in (l.split() for l in open(f"{out}/{name}") if l.strip())}
before, after = openssl("openssl-before"), openssl("openssl-after")

def gbs(bench, n):
    return n / median[(bench, n)] / 1e9

print("| size | ring hmac::sign | our sign (+hex) | our verify (parse+verify) | openssl HMAC (before / after) | sign ÷ openssl (throughput) | verify ÷ openssl (throughput) | sign ÷ ring sign (time) | verify ÷ ring verify (time) |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for n in sorted(before):
    ref = max(before[n], after[n]) / 1e9
    ring, sign, verify = gbs("ring_hmac_sign", n), gbs("sign_header", n), gbs("verify_header", n)
    ring_verify = gbs("ring_hmac_verify", n)
    print(f"| {n} B | {ring:.3f} GB/s | {sign:.3f} GB/s | {verify:.3f} GB/s "
          f"| {before[n]/1e9:.3f} / {after[n]/1e9:.3f} GB/s | {sign/ref:.2f} | {verify/ref:.2f} "
          f"| {ring/sign:.3f} | {ring_verify/verify:.3f} |")

n = 64
print()
for ours, base, what in [("sign_header", "ring_hmac_sign", "sign + hex rendering"),
                         ("verify_header", "ring_hmac_verify", "parse + verify")]:
    o, b = median[(ours, n)] * 1e9, median[(base, n)] * 1e9
    print(f"- 64 B {what}: {o:.1f} ns vs ring {b:.1f} ns: overhead {100 * (o / b - 1):+.1f}% (goal <= 20%)")
for n in (16384, 1048576):
    ref = max(before[n], after[n])
    worst = min(n / median[("sign_header", n)], n / median[("verify_header", n)]) / ref
    print(f"- {n} B: slower of sign/verify at {100 * worst:.1f}% of openssl (goal >= 90%)")
PY
