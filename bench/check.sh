#!/usr/bin/env bash
# Benchmark: `homelabctl check` against the peers it replaces, on the same generated Flux repository.
#
#   peers = `kubectl kustomize DIR` (kustomize v5.5.0) on every kustomization directory, each output
#           validated by `kubernetes-validate -k 1.35.0 --strict`, one after another
#   ours  = `homelabctl check` (release build): every directory built, every Flux Kustomization built with
#           postBuild substitution, every object validated against the built-in schemas, plus the
#           SOPS/Secret/homelab.yaml policy checks and the secret scan
# Also compares `homelabctl build DIR` with `kubectl kustomize DIR` byte for byte on every directory and
# prints how many are identical (each one that is not is named on stderr).
#
# Usage: [HOMELABCTL=BIN] [CHECK_ARGS="--schema-dir DIR"] [PEERS=0] bench/check.sh [APPS]
#   (default 160 apps → 160 Flux Kustomizations, 160+ kustomization dirs). Needs nothing outside the
#   checkout; PEERS=0 times homelabctl only (no kubectl/kubernetes-validate needed). CHECK_ARGS is passed
#   to `check` (e.g. to time an older binary that needed --schema-dir).
set -euo pipefail
# A relative HOMELABCTL names a file from where the script was started: make it absolute before the cd.
if [ -n "${HOMELABCTL:-}" ]; then HOMELABCTL=$(realpath "$HOMELABCTL"); fi
cd "$(dirname "$0")/.."
APPS=${1:-160}
read -r -a CHECK_EXTRA <<< "${CHECK_ARGS:-}"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
REPO=$WORK/repo

gen_repo() {
  mkdir -p "$REPO/kubernetes/flux-system/ks" "$REPO/kubernetes/components/common" "$REPO/kubernetes/components/monitoring"
  cat > "$REPO/kubernetes/components/common/kustomization.yaml" <<'Y'
apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
resources: [pdb.yaml]
patches:
  - target: {kind: Deployment}
    patch: |-
      - op: add
        path: /spec/template/metadata/annotations
        value: {reloader.stakater.com/auto: "true"}
Y
  cat > "$REPO/kubernetes/components/common/pdb.yaml" <<'Y'
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: app}
spec:
  minAvailable: 1
  selector: {matchLabels: {app.kubernetes.io/name: app}}
Y
  cat > "$REPO/kubernetes/components/monitoring/kustomization.yaml" <<'Y'
apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
patches:
  - target: {kind: Service}
    patch: |-
      apiVersion: v1
      kind: Service
      metadata:
        name: any
        annotations: {prometheus.io/scrape: "true"}
Y
  {
    echo "apiVersion: kustomize.config.k8s.io/v1beta1"
    echo "kind: Kustomization"
    echo "namespace: flux-system"
    echo "resources:"
    echo "  - settings.yaml"
  } > "$REPO/kubernetes/flux-system/kustomization.yaml"
  cat > "$REPO/kubernetes/flux-system/settings.yaml" <<'Y'
apiVersion: v1
kind: ConfigMap
metadata: {name: cluster-settings, namespace: flux-system}
data: {DOMAIN: home.example.com, TIMEZONE: Europe/Paris}
Y
  for i in $(seq -w 1 "$APPS"); do
    local app=app-$i d=$REPO/kubernetes/apps/app-$i/app
    mkdir -p "$d"
    cat > "$d/kustomization.yaml" <<Y
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [deployment.yaml, service.yaml]
components: [../../../components/common, ../../../components/monitoring]
labels:
  - pairs: {app.kubernetes.io/part-of: $app}
configMapGenerator:
  - name: $app-config
    literals: [LOG_LEVEL=info, APP=$app]
    files: [settings.conf]
secretGenerator:
  - name: $app-token
    literals: [token=generated-$i]
patches:
  - target: {kind: Deployment, name: app}
    patch: |-
      - op: replace
        path: /spec/template/spec/containers/0/image
        value: ghcr.io/example/$app:1.$i.0
replacements:
  - source: {kind: ConfigMap, name: $app-config, fieldPath: data.LOG_LEVEL}
    targets:
      - select: {kind: Deployment}
        fieldPaths: [spec.template.metadata.annotations.log-level]
        options: {create: true}
Y
    printf 'listen = 8080\nname = %s\n' "$app" > "$d/settings.conf"
    cat > "$d/deployment.yaml" <<Y
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  labels: {app.kubernetes.io/name: app}
spec:
  replicas: 2
  selector:
    matchLabels: {app.kubernetes.io/name: app}
  template:
    metadata:
      labels: {app.kubernetes.io/name: app}
    spec:
      containers:
        - name: app
          image: ghcr.io/example/placeholder:0
          ports: [{name: http, containerPort: 8080}]
          envFrom: [{configMapRef: {name: $app-config}}, {secretRef: {name: $app-token}}]
          resources:
            requests: {cpu: 10m, memory: 64Mi}
            limits: {memory: 128Mi}
          readinessProbe: {httpGet: {path: /healthz, port: http}}
Y
    cat > "$d/service.yaml" <<Y
apiVersion: v1
kind: Service
metadata: {name: app}
spec:
  selector: {app.kubernetes.io/name: app}
  ports: [{name: http, port: 80, targetPort: http}]
Y
    cat > "$REPO/kubernetes/flux-system/ks/$app.yaml" <<Y
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: $app, namespace: flux-system}
spec:
  interval: 30m
  path: ./kubernetes/apps/$app/app
  prune: true
  sourceRef: {kind: GitRepository, name: flux-system}
  targetNamespace: $app
  postBuild:
    substitute: {APP: $app}
    substituteFrom: [{kind: ConfigMap, name: cluster-settings}]
Y
    echo "  - ks/$app.yaml" >> "$REPO/kubernetes/flux-system/kustomization.yaml"
  done
}

gen_repo
DIRS=$(find "$REPO/kubernetes" -name kustomization.yaml -printf '%h\n' | sort)
NDIRS=$(echo "$DIRS" | wc -l)
echo "generated: $APPS apps, $NDIRS kustomization directories, $(find "$REPO/kubernetes/flux-system/ks" -name '*.yaml' | wc -l) Flux Kustomizations"

# HOMELABCTL=path/to/homelabctl skips the release build (e.g. to measure a debug build, which only
# makes the ratio more conservative).
if [ -n "${HOMELABCTL:-}" ]; then
  BIN=$HOMELABCTL
else
  cargo build -q --release -p homelabctl
  BIN=$(realpath "${CARGO_TARGET_DIR:-target}/release/homelabctl")
fi

now() { date +%s.%N; }

# ours (warm-up run, then timed)
"$BIN" check --dir "$REPO" "${CHECK_EXTRA[@]}" --missing-schemas error > "$WORK/ours.txt" || { cat "$WORK/ours.txt"; echo "homelabctl check found problems in the generated repo" >&2; exit 1; }
tail -1 "$WORK/ours.txt"
t0=$(now)
"$BIN" check --dir "$REPO" "${CHECK_EXTRA[@]}" --missing-schemas error > /dev/null
t1=$(now)
ours=$(echo "$t1 - $t0" | bc)
if [ "${PEERS:-1}" = 0 ]; then
  printf 'homelabctl check:                                   %8.2f s\n' "$ours"
  exit 0
fi

# peers, one after another: kustomize build of every directory, then kubernetes-validate on each output
mkdir -p "$WORK/out"
t0=$(now)
n=0
for d in $DIRS; do
  n=$((n + 1))
  kubectl kustomize "$d" > "$WORK/out/$n.yaml"
  kubernetes-validate -k 1.35.0 --strict --quiet "$WORK/out/$n.yaml" > /dev/null 2>&1 || true
done
t1=$(now)
peers=$(echo "$t1 - $t0" | bc)

# peers, most favourable: one kubernetes-validate process for all outputs
t0=$(now)
for d in $DIRS; do kubectl kustomize "$d" > /dev/null; done
t1=$(now)
kustomize_only=$(echo "$t1 - $t0" | bc)
t0=$(now)
kubernetes-validate -k 1.35.0 --strict --quiet "$WORK"/out/*.yaml > /dev/null 2>&1 || true
t1=$(now)
validate_once=$(echo "$t1 - $t0" | bc)
peers_batched=$(echo "$kustomize_only + $validate_once" | bc)

# kustomize outputs, byte for byte: `homelabctl build DIR` against the `kubectl kustomize DIR` kept above
same=0
n=0
for d in $DIRS; do
  n=$((n + 1))
  if "$BIN" build "$d" 2>/dev/null | cmp -s - "$WORK/out/$n.yaml"; then
    same=$((same + 1))
  else
    echo "differs from kubectl kustomize: ${d#"$REPO"/}" >&2
  fi
done

printf 'kustomize output: %d of %d directories byte-identical to kubectl kustomize\n' "$same" "$NDIRS"
printf 'homelabctl check:                                   %8.2f s\n' "$ours"
printf 'peers (kubectl kustomize + kubernetes-validate per dir): %8.2f s   ratio %6.1fx\n' "$peers" "$(echo "$peers / $ours" | bc -l)"
printf 'peers (kubectl kustomize per dir, one validate run):     %8.2f s   ratio %6.1fx\n' "$peers_batched" "$(echo "$peers_batched / $ours" | bc -l)"
