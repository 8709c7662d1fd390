#!/usr/bin/env bash
# Secret-scan benchmark: `homelabctl scan --history` against `gitleaks git` on the same generated repository.
#
#   bench/scan.sh [COMMITS]        (default 3000)
#
# Generates a git history of COMMITS commits (YAML, env and code files that grow and change, a few planted
# secrets, the keywords the generic rules look for), builds homelabctl in release mode, then times, best of
# RUNS (default 3): homelabctl with gitleaks' default configuration (same rules as the peer), homelabctl with
# its built-in rules, and gitleaks 8.30.1 with its default configuration. Prints the finding counts and the
# ratios gitleaks / homelabctl (wall clock and CPU time). Needs git, python3, bc, /usr/bin/time and gitleaks.
set -euo pipefail

COMMITS=${1:-3000}
RUNS=${RUNS:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
config="$root/testdata/gitleaks/gitleaks-default.toml"
target=${CARGO_TARGET_DIR:-$root/target}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
repo="$work/repo"

echo "generating $COMMITS commits…" >&2
git init -q -b main "$repo"
python3 - "$COMMITS" <<'PY' | git -C "$repo" fast-import --quiet
import random, sys
n = int(sys.argv[1])
rnd = random.Random(42)
alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
def tok(k, a=alnum): return "".join(rnd.choice(a) for _ in range(k))
words = "cluster node talos flux kustomization release chart values namespace service ingress volume storage backup monitor alert token key secret password api access auth config image tag digest replicas".split()
files = {f"kubernetes/apps/app{i}/values.yaml": [] for i in range(40)}
files.update({f"src/module{i}.py": [] for i in range(30)})
files.update({f"env/site{i}.env": [] for i in range(10)})
names = list(files)
out = sys.stdout
for c in range(n):
    touched = rnd.sample(names, rnd.randint(1, 4))
    for f in touched:
        lines = files[f]
        for _ in range(rnd.randint(1, 12)):
            w = rnd.sample(words, 3)
            r = rnd.random()
            if r < 0.004:
                line = f"github_token = \"ghp_{tok(36)}\""
            elif r < 0.008:
                line = f"AWS_ACCESS_KEY_ID={'AKIA' + tok(16, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567')}"
            elif r < 0.03:
                line = f"{w[0]}_{w[1]}: {tok(rnd.randint(8, 30))}"
            elif f.endswith(".py"):
                line = f"def {w[0]}_{w[1]}(x):  return x.{w[2]}({rnd.randint(0, 999)})"
            else:
                line = f"{w[0]}_{w[1]}: {w[2]}-{rnd.randint(0, 99999)}"
            lines.insert(rnd.randint(0, len(lines)), line)
        if len(lines) > 80 and rnd.random() < 0.3:
            del lines[rnd.randint(0, len(lines) - 1)]
    out.write(f"commit refs/heads/main\ncommitter Bench <bench@example.invalid> {1700000000 + c * 60} +0000\n")
    msg = f"chore: change {c}\n"
    out.write(f"data {len(msg)}\n{msg}")
    for f in touched:
        body = ("\n".join(files[f]) + "\n").encode()
        out.write(f"M 644 inline {f}\ndata {len(body)}\n")
        out.flush()
        sys.stdout.buffer.write(body)
        out.write("\n")
PY
git -C "$repo" checkout -q main
git -C "$repo" gc -q --aggressive >/dev/null 2>&1 || true
echo "repository: $(git -C "$repo" rev-list --count --all) commits, $(git -C "$repo" log -p -U0 --all | wc -c | awk '{printf "%.1f MB of diff", $1/1e6}')" >&2

echo "building homelabctl (release)…" >&2
(cd "$root" && cargo build -q --release -p homelabctl)
hl="$target/release/homelabctl"

best() { # best of RUNS runs of "$@": "<wall seconds> <cpu seconds (user+sys, children included)>"
  local best=999999 cpu=0 w c
  for _ in $(seq "$RUNS"); do
    /usr/bin/time -f '%e %U %S' -o "$work/time" "$@" >/dev/null 2>&1 || true
    read -r w u s < <(tail -n 1 "$work/time")
    c=$(echo "$u + $s" | bc -l)
    if (( $(echo "$w < $best" | bc -l) )); then best=$w; cpu=$c; fi
  done
  printf '%.2f %.2f\n' "$best" "$cpu"
}

read -r ours_gl ours_gl_cpu < <(best "$hl" scan --history --config "$config" --format json "$repo")
read -r ours_def ours_def_cpu < <(best "$hl" scan --history --format json "$repo")
read -r theirs theirs_cpu < <(best gitleaks git "$repo" -c "$config" --no-banner --exit-code 0 -l error -f json -r "$work/gitleaks.json")
read -r gitlog gitlog_cpu < <(best sh -c "git -C '$repo' log -p -U0 --full-history --all --diff-filter=tuxdb > /dev/null")

n_ours=$("$hl" scan --history --config "$config" --format json "$repo" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))' || true)
n_def=$("$hl" scan --history --format json "$repo" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))' || true)
n_theirs=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$work/gitleaks.json")

printf '%-46s %8s %8s %9s\n' "" "wall s" "cpu s" "findings"
printf '%-46s %8s %8s %9s\n' "gitleaks 8.30.1 git (its default config)" "$theirs" "$theirs_cpu" "$n_theirs"
printf '%-46s %8s %8s %9s\n' "homelabctl scan --history (same config)" "$ours_gl" "$ours_gl_cpu" "$n_ours"
printf '%-46s %8s %8s %9s\n' "homelabctl scan --history (built-in rules)" "$ours_def" "$ours_def_cpu" "$n_def"
printf '%-46s %8s %8s\n' "(git log -p alone, the floor for both)" "$gitlog" "$gitlog_cpu"
printf 'ratio gitleaks / homelabctl, same rules: %.2fx wall, %.2fx cpu; built-in rules: %.2fx wall, %.2fx cpu\n' \
  "$(echo "$theirs / $ours_gl" | bc -l)" "$(echo "$theirs_cpu / $ours_gl_cpu" | bc -l)" \
  "$(echo "$theirs / $ours_def" | bc -l)" "$(echo "$theirs_cpu / $ours_def_cpu" | bc -l)"
