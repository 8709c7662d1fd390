#!/usr/bin/env bash
# Regenerates expected.yaml of every case under crates/homelab-kustomize/tests/fixtures with the real
# `kubectl kustomize` (kustomize v5.5.0). A case builds its own directory, or `overlay/` when present.
set -euo pipefail
cd "$(dirname "$0")/../crates/homelab-kustomize/tests/fixtures"
for case in */; do
  case=${case%/}
  dir=$case; [ -d "$case/overlay" ] && dir=$case/overlay
  kubectl kustomize "$dir" > "$case/expected.yaml" 2>/dev/null || { echo "kubectl failed on $case" >&2; exit 1; }
  echo "updated $case/expected.yaml"
done
