#!/usr/bin/env bash
# Benchmark: `homelabctl plan` with nothing to change, end to end (process start, homelab.yaml, SOPS-decrypted
# token and Talos bundle, Proxmox/apid/Kubernetes round trips), against the lab simulator on loopback.
# The simulators add no deliberate delay on the read paths a plan uses, so the figure is our own time plus
# loopback round trips. Prints min/median/max over RUNS runs against the goal of 100 ms. There is no peer to
# compare with here (terraform and its providers are not on this machine).
# Usage: bench/plan.sh [RUNS]   (builds homelabctl in release mode)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-20}
cargo build -q --release -p homelabctl
BIN=$(realpath "${CARGO_TARGET_DIR:-target}/release/homelabctl")

WORK=$(mktemp -d)
SIM_PID=
cleanup() { [ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null && wait "$SIM_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
export HOME="$WORK/home" XDG_CONFIG_HOME="$WORK/home/.config" NO_COLOR=1 HOMELAB_SIM_FAST=1
unset HOMELAB_PROXMOX_TOKEN_SECRET SOPS_AGE_KEY_FILE

"$BIN" demo --keep "$WORK/lab" >/dev/null 2>"$WORK/demo.log" || { cat "$WORK/demo.log" >&2; exit 1; }
"$BIN" sim --state-dir "$WORK/lab/.homelab/sim" >"$WORK/sim.log" 2>&1 &
SIM_PID=$!
for _ in $(seq 100); do grep -q '^Ready\.' "$WORK/sim.log" 2>/dev/null && break; sleep 0.1; done
grep -q '^Ready\.' "$WORK/sim.log" || { echo "the simulator did not start:" >&2; cat "$WORK/sim.log" >&2; exit 1; }

CONFIG="$WORK/lab/homelab.yaml"
"$BIN" --config "$CONFIG" plan --detailed-exitcode >/dev/null 2>&1 \
  || { echo "plan reports changes or failed; the benchmark needs a converged lab" >&2; exit 1; }
python3 - "$BIN" "$CONFIG" "$RUNS" <<'PY'
import subprocess, sys, time
binary, config, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
times = []
for _ in range(runs):
    t = time.perf_counter()
    r = subprocess.run([binary, "--config", config, "plan", "--detailed-exitcode"], capture_output=True)
    times.append((time.perf_counter() - t) * 1000)
    if r.returncode != 0:
        sys.exit(f"plan exited {r.returncode}: {r.stderr.decode(errors='replace')}")
times.sort()
print(f"homelabctl plan (no changes, whole process), {runs} runs: "
      f"min {times[0]:.1f} ms, median {times[len(times)//2]:.1f} ms, max {times[-1]:.1f} ms (goal < 100 ms)")
PY
