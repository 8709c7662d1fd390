#!/usr/bin/env python3
"""Writes a `git fast-import` stream of a synthetic homelab history with planted secrets.

    bench/gen-history.py COMMITS [SEED] [--shape homelab|grow] | git -C REPO fast-import --quiet

Two shapes. `homelab` (the default) looks like the GitOps repositories gitleaks is run on: about a
thousand small YAML files five or six directories deep, mostly one-line bot bumps, some hand edits,
new, moved and deleted app directories, sweeping one-line refactors. `grow` (the first benchmark
shape) has ~120 files that only grow, to tens of kB each, so every diff reads and compares big blobs.
Both have commits on a main branch and on short feature branches merged back (merge commits), renames,
deletions, binary files (with NUL bytes, some holding a token), and secrets of several gitleaks rule
types (github-pat, aws-access-token, slack-bot-token, gitlab-pat, private-key, generic-api-key, and
base64-encoded aws keys that only decoding finds) planted across commits. Every secret is random, made
at run time. The same COMMITS, SEED and shape give the same repository.
"""
import argparse
import random
import sys

cli = argparse.ArgumentParser(description="synthetic homelab git history as a fast-import stream")
cli.add_argument("commits", type=int)
cli.add_argument("seed", type=int, nargs="?", default=42)
cli.add_argument("--shape", choices=["homelab", "grow"], default="homelab")
args = cli.parse_args()
rnd = random.Random(args.seed)
out = sys.stdout.buffer
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
UPPER32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
B64 = ALNUM + "+/"


def tok(k, a=ALNUM):
    return "".join(rnd.choice(a) for _ in range(k))


def b64(text):
    import base64

    return base64.b64encode(text.encode()).decode()


WORDS = (
    "cluster node talos flux kustomization release chart values namespace service ingress volume storage "
    "backup monitor alert token key secret password api access auth config image tag digest replicas"
).split()


def secret_line(path):
    r = rnd.random()
    if r < 0.2:
        return f'github_token = "ghp_{tok(36)}"'
    if r < 0.4:
        return f"AWS_ACCESS_KEY_ID=AKIA{tok(16, UPPER32)}"
    if r < 0.5:
        return f"slack: xoxb-{tok(12, '0123456789')}-{tok(13, '0123456789')}-{tok(24)}"
    if r < 0.6:
        return f"gitlab_token: glpat-{tok(20)}"
    if r < 0.75:
        return f"api_key = \"{tok(32)}\""
    if r < 0.85:
        # Only gitleaks' decoding finds this one.
        return f"payload: {b64('aws_access_key_id = AKIA' + tok(16, UPPER32))}"
    body = "\n".join(tok(64, B64) for _ in range(6))
    kind = rnd.choice(["RSA ", "EC ", "OPENSSH ", ""])
    return f"-----BEGIN {kind}PRIVATE KEY-----\n{body}\n-----END {kind}PRIVATE KEY-----"


def filler(path, w):
    r = rnd.random()
    if r < 0.02:
        return f"{w[0]}_{w[1]}: {tok(rnd.randint(8, 30))}"
    if path.endswith(".py"):
        return f"def {w[0]}_{w[1]}(x):  return x.{w[2]}({rnd.randint(0, 999)})"
    return f"{w[0]}_{w[1]}: {w[2]}-{rnd.randint(0, 99999)}"


def emit(s):
    out.write(s if isinstance(s, bytes) else s.encode())


def data(body):
    emit(f"data {len(body)}\n")
    emit(body)
    emit("\n")


def grow(n):
    """The first benchmark shape: ~120 files that only grow (tens of kB each by the end), 1-4 files
    changed per commit with 1-12 inserted lines each; 2.7 GB of blob text over 30,000 commits."""
    files = {f"kubernetes/apps/app{i}/values.yaml": [] for i in range(60)}
    files.update({f"src/module{i}.py": [] for i in range(40)})
    files.update({f"env/site{i}.env": [] for i in range(20)})
    binaries = {}
    mark = 0
    open_branch = None  # [name, commits left, first commit pending]
    written = set()  # paths that exist in the repository
    touched = {}  # path -> content bytes written on the open branch (the merge brings them to main)


    for c in range(n):
        # Feature branches: fork from main, a few commits, merge back with a merge commit.
        if open_branch is None and c > 0 and rnd.random() < 0.02:
            open_branch = [f"feature/{c}", rnd.randint(2, 6), True]
        ref = open_branch[0] if open_branch else "main"
        merging = open_branch is not None and open_branch[1] == 0
        if merging:
            ref = "main"
        emit(f"commit refs/heads/{ref}\n")
        mark += 1
        emit(f"mark :{mark}\n")
        if ref == "main":
            main_mark = mark
        emit(f"author Bench {c % 7} <bench{c % 7}@example.invalid> {1700000000 + c * 60} +0000\n")
        emit(f"committer Bench <bench@example.invalid> {1700000000 + c * 60} +0000\n")
        data(f"chore: change {c}\n".encode())
        if open_branch and open_branch[2] and not merging:
            emit(f"from :{main_mark}\n")
            open_branch[2] = False
        if merging:
            emit(f"merge refs/heads/{open_branch[0]}\n")
            open_branch = None
            # The merge's tree is the branch's: main had no commits meanwhile. git log -p shows no diff for a
            # merge, so neither scanner reports what it brings.
            for f, body in sorted(touched.items()):
                emit(f"M 644 inline {f}\n")
                data(body)
            touched.clear()
            emit("\n")
            continue
        if open_branch:
            open_branch[1] -= 1

        names = sorted(written & set(files))
        r = rnd.random()
        if r < 0.01 and len(names) > 10 and not open_branch:
            # Rename, sometimes with an edit (git's rename detection pairs them; only the edit is added).
            old = rnd.choice(names)
            new = old.replace(".yaml", f"-r{c}.yaml").replace(".py", f"_r{c}.py").replace(".env", f"-r{c}.env")
            files[new] = files.pop(old)
            written.discard(old)
            written.add(new)
            emit(f"R {old} {new}\n")
            if rnd.random() < 0.5:
                files[new].insert(rnd.randint(0, len(files[new])), filler(new, rnd.sample(WORDS, 3)))
                emit(f"M 644 inline {new}\n")
                data(("\n".join(files[new]) + "\n").encode())
            emit("\n")
            continue
        if r < 0.013 and len(names) > 10 and not open_branch:
            gone = rnd.choice(names)
            del files[gone]
            written.discard(gone)
            emit(f"D {gone}\n\n")
            continue
        if r < 0.02:
            b = f"assets/blob{c}.bin"
            payload = bytes(rnd.randrange(256) for _ in range(200)) + b"\0"
            if rnd.random() < 0.5:
                payload += f"ghp_{tok(36)}\n".encode()
            binaries[b] = payload
            if open_branch:
                touched[b] = payload
            emit(f"M 644 inline {b}\n")
            data(payload)
            emit("\n")
            continue
        if r < 0.025:
            f = f"kubernetes/apps/new{c}/values.yaml"
            files[f] = []
        for f in rnd.sample(list(files), rnd.randint(1, 4)):
            lines = files[f]
            for _ in range(rnd.randint(1, 12)):
                w = rnd.sample(WORDS, 3)
                line = secret_line(f) if rnd.random() < 0.004 else filler(f, w)
                lines.insert(rnd.randint(0, len(lines)), line)
            if len(lines) > 80 and rnd.random() < 0.3:
                del lines[rnd.randint(0, len(lines) - 1)]
            body = ("\n".join(lines) + "\n").encode()
            if open_branch:
                touched[f] = body
            written.add(f)
            emit(f"M 644 inline {f}\n")
            data(body)
        emit("\n")


NAMESPACES = (
    "default media network observability kube-system flux-system cert-manager database storage security "
    "home-automation downloads games ai tools backup external-secrets actions-runner-system system-upgrade "
    "openebs-system rook-ceph volsync-system auth dev"
).split()
APPWORDS = (
    "sonarr radarr prowlarr bazarr plex jellyfin immich paperless grafana prometheus loki vector gatus "
    "cloudflared echo-server external-dns ingress-nginx envoy-gateway postgres dragonfly mosquitto zigbee "
    "home-assistant esphome node-red frigate authelia lldap vaultwarden minio volsync snapshot-controller "
    "reloader descheduler spegel coredns cilium metrics-server kromgo homepage atuin miniflux linkding "
    "mealie actual qbittorrent sabnzbd recyclarr unpoller smartctl-exporter blackbox-exporter alertmanager"
).split()
ENVKEYS = "TZ LOG_LEVEL PUID PGID PORT HOST DB_HOST DB_NAME DB_USER REDIS_URL BASE_URL CACHE_DIR".split()


def version():
    return f"{rnd.randint(0, 9)}.{rnd.randint(0, 40)}.{rnd.randint(0, 30)}"


def image_tag():
    return f"{version()}@sha256:{tok(64, '0123456789abcdef')}"


def yaml_filler(indent):
    """A line an engineer adds by hand: env values, annotations, resource settings, comments."""
    r = rnd.random()
    pad = " " * indent
    if r < 0.02:
        # Looks like a credential to generic-api-key about as often as real homelab YAML does.
        w = rnd.sample(WORDS, 2)
        return f"{pad}{w[0]}_{w[1]}: {tok(rnd.randint(8, 30))}"
    if r < 0.3:
        return f"{pad}{rnd.choice(ENVKEYS)}: \"{rnd.choice(WORDS)}-{rnd.randint(0, 9999)}\""
    if r < 0.45:
        return f"{pad}# {' '.join(rnd.sample(WORDS, rnd.randint(3, 8)))}"
    if r < 0.6:
        return f"{pad}{rnd.choice(['cpu', 'memory'])}: {rnd.randint(1, 4000)}{rnd.choice(['m', 'Mi', 'Gi'])}"
    if r < 0.75:
        return f"{pad}{rnd.choice(WORDS)}.home.arpa/{rnd.choice(WORDS)}: \"{rnd.choice(['true', 'false'])}\""
    return f"{pad}{rnd.choice(WORDS)}_{rnd.choice(WORDS)}: {rnd.choice(WORDS)}-{rnd.randint(0, 99999)}"


def app_files(ns, app):
    base = f"kubernetes/apps/{ns}/{app}"
    port = rnd.randint(1000, 9999)
    hr = [
        "---",
        "# yaml-language-server: $schema=https://kubernetes-schemas.pages.dev/helm.toolkit.fluxcd.io/helmrelease_v2.json",
        "apiVersion: helm.toolkit.fluxcd.io/v2",
        "kind: HelmRelease",
        "metadata:",
        f"  name: {app}",
        "spec:",
        "  interval: 1h",
        "  chartRef:",
        "    kind: OCIRepository",
        "    name: app-template",
        "  install:",
        "    remediation:",
        "      retries: -1",
        "  upgrade:",
        "    cleanupOnFail: true",
        "    remediation:",
        "      retries: 3",
        "  values:",
        "    controllers:",
        f"      {app}:",
        "        annotations:",
        "          reloader.stakater.com/auto: \"true\"",
        "        containers:",
        "          app:",
        "            image:",
        f"              repository: ghcr.io/home-operations/{app}",
        f"              tag: {image_tag()}",
        "            env:",
    ]
    hr += [f"              {k}: \"{rnd.choice(WORDS)}\"" for k in rnd.sample(ENVKEYS, rnd.randint(1, 6))]
    hr += [
        "            probes:",
        "              liveness: &probes",
        "                enabled: true",
        "              readiness: *probes",
        "            securityContext:",
        "              allowPrivilegeEscalation: false",
        "              readOnlyRootFilesystem: true",
        "            resources:",
        "              requests:",
        f"                cpu: {rnd.randint(5, 500)}m",
        "              limits:",
        f"                memory: {rnd.randint(64, 4096)}Mi",
        "    service:",
        "      app:",
        "        ports:",
        "          http:",
        f"            port: {port}",
        "    route:",
        "      app:",
        "        hostnames: [\"{{ .Release.Name }}.${SECRET_DOMAIN}\"]",
        "    persistence:",
        "      config:",
        f"        existingClaim: {app}",
    ]
    hr += [yaml_filler(8) for _ in range(rnd.randint(0, 40))]
    ks = [
        "---",
        "apiVersion: kustomize.toolkit.fluxcd.io/v1",
        "kind: Kustomization",
        "metadata:",
        f"  name: &app {app}",
        "  namespace: &namespace " + ns,
        "spec:",
        "  commonMetadata:",
        "    labels:",
        "      app.kubernetes.io/name: *app",
        "  interval: 1h",
        f"  path: ./kubernetes/apps/{ns}/{app}/app",
        "  prune: true",
        "  sourceRef:",
        "    kind: GitRepository",
        "    name: flux-system",
        "    namespace: flux-system",
        "  targetNamespace: *namespace",
        "  timeout: 5m",
        "  wait: false",
    ]
    kust = ["---", "apiVersion: kustomize.config.k8s.io/v1beta1", "kind: Kustomization", "resources:",
            "  - ./helmrelease.yaml", "  - ./ocirepository.yaml"]
    oci = ["---", "apiVersion: source.toolkit.fluxcd.io/v1", "kind: OCIRepository", "metadata:",
           f"  name: {app}", "spec:", "  interval: 15m", "  layerSelector:",
           "    mediaType: application/vnd.cncf.helm.chart.content.v1.tar+gzip", "    operation: copy",
           "  ref:", f"    tag: {version()}", "  url: oci://ghcr.io/bjw-s-labs/helm/app-template"]
    out = {
        f"{base}/ks.yaml": ks,
        f"{base}/app/helmrelease.yaml": hr,
        f"{base}/app/kustomization.yaml": kust,
        f"{base}/app/ocirepository.yaml": oci,
    }
    if rnd.random() < 0.4:
        kust.append("  - ./externalsecret.yaml")
        out[f"{base}/app/externalsecret.yaml"] = [
            "---", "apiVersion: external-secrets.io/v1", "kind: ExternalSecret", "metadata:", f"  name: {app}",
            "spec:", "  secretStoreRef:", "    kind: ClusterSecretStore", "    name: onepassword", "  target:",
            f"    name: {app}-secret", "    template:", "      data:",
        ] + [f"        {k}: \"{{{{ .{k.lower()} }}}}\"" for k in rnd.sample(ENVKEYS, rnd.randint(1, 5))] + [
            "  dataFrom:", "    - extract:", f"        key: {app}"]
    if rnd.random() < 0.2:
        out[f"{base}/app/resources/{rnd.choice(WORDS)}.yaml"] = [yaml_filler(0) for _ in range(rnd.randint(5, 60))]
    return out


def homelab(n):
    """A homelab GitOps repository like the real ones gitleaks is run on: ~1,000 small YAML files in
    trees five or six levels deep (kubernetes/apps/<namespace>/<app>/app/…), most commits a bot's
    one-line image or chart bump, some hand edits of a few lines, new apps, a few sweeping refactors,
    moves and deletions of app directories, feature branches merged back, the odd binary file."""
    files = {}
    apps = []  # (namespace, app directory)
    for ns in NAMESPACES:
        files[f"kubernetes/apps/{ns}/namespace.yaml"] = ["---", "apiVersion: v1", "kind: Namespace",
                                                         "metadata:", f"  name: {ns}"]
        files[f"kubernetes/apps/{ns}/kustomization.yaml"] = ["---", "apiVersion: kustomize.config.k8s.io/v1beta1",
                                                             "kind: Kustomization", "resources:",
                                                             "  - ./namespace.yaml"]
    for i in range(6):
        files[f"talos/patches/{rnd.choice(['controller', 'global'])}/patch{i}.yaml"] = [yaml_filler(2) for _ in range(20)]
        files[f".github/workflows/workflow{i}.yaml"] = [yaml_filler(4) for _ in range(40)]
        files[f"scripts/task{i}.sh"] = ["#!/usr/bin/env bash", "set -euo pipefail"] + [
            f"echo {' '.join(rnd.sample(WORDS, 4))}" for _ in range(30)]
        files[f"docs/page{i}.md"] = [f"{' '.join(rnd.sample(WORDS, 10))}" for _ in range(50)]

    def add_app(ns, name):
        app = name
        k = 2
        while (ns, app) in apps_set:
            app = f"{name}-{k}"
            k += 1
        apps.append((ns, app))
        apps_set.add((ns, app))
        new = app_files(ns, app)
        files.update(new)
        files[f"kubernetes/apps/{ns}/kustomization.yaml"].append(f"  - ./{app}/ks.yaml")
        return list(new) + [f"kubernetes/apps/{ns}/kustomization.yaml"]

    apps_set = set()
    for _ in range(170):
        add_app(rnd.choice(NAMESPACES), rnd.choice(APPWORDS))

    mark = 0
    main_mark = 0
    open_branch = None  # [name, commits left, first commit pending]
    touched = {}  # path -> content bytes written on the open branch (the merge brings them to main)

    def body_of(path):
        return ("\n".join(files[path]) + "\n").encode()

    for c in range(n):
        if open_branch is None and c > 0 and rnd.random() < 0.02:
            open_branch = [f"feature/{c}", rnd.randint(2, 6), True]
        ref = open_branch[0] if open_branch else "main"
        merging = open_branch is not None and open_branch[1] == 0
        if merging:
            ref = "main"
        r = rnd.random()
        bot = c > 0 and r < 0.6 and not merging
        who = "renovate[bot] <29139614+renovate[bot]@users.noreply.github.com>" if bot else \
            f"Homelab Admin {c % 3} <admin{c % 3}@example.invalid>"
        emit(f"commit refs/heads/{ref}\n")
        mark += 1
        emit(f"mark :{mark}\n")
        if ref == "main":
            main_mark = mark
        emit(f"author {who} {1600000000 + c * 3000} +0000\n")
        emit(f"committer {who} {1600000000 + c * 3000} +0000\n")
        data(f"{'fix(container): update image' if bot else 'feat: change'} {c}\n".encode())
        if open_branch and open_branch[2] and not merging:
            emit(f"from :{main_mark}\n")
            open_branch[2] = False
        if merging:
            emit(f"merge refs/heads/{open_branch[0]}\n")
            open_branch = None
            for f, body in sorted(touched.items()):
                emit(f"M 644 inline {f}\n")
                data(body)
            touched.clear()
            emit("\n")
            continue
        if open_branch:
            open_branch[1] -= 1

        changed = []
        if c == 0:
            changed = sorted(files)
        elif bot:
            # One image or chart bump; grouped updates touch a few apps at once.
            for _ in range(1 if rnd.random() < 0.85 else rnd.randint(2, 5)):
                ns, app = rnd.choice(apps)
                base = f"kubernetes/apps/{ns}/{app}/app"
                if rnd.random() < 0.7:
                    path = f"{base}/helmrelease.yaml"
                    lines = files[path]
                    i = next((k for k, l in enumerate(lines) if l.lstrip().startswith("tag: ")), None)
                    if i is not None:
                        lines[i] = f"              tag: {image_tag()}"
                else:
                    path = f"{base}/ocirepository.yaml"
                    lines = files[path]
                    i = next((k for k, l in enumerate(lines) if l.lstrip().startswith("tag: ")), None)
                    if i is not None:
                        lines[i] = f"    tag: {version()}"
                changed.append(path)
        elif r < 0.603 and not open_branch:
            # A new app.
            changed = add_app(rnd.choice(NAMESPACES), rnd.choice(APPWORDS))
        elif r < 0.604 and not open_branch and len(apps) > 50:
            # An app leaves (its directory deleted, its namespace kustomization edited).
            ns, app = apps.pop(rnd.randrange(len(apps)))
            apps_set.discard((ns, app))
            prefix = f"kubernetes/apps/{ns}/{app}/"
            for p in [p for p in files if p.startswith(prefix)]:
                del files[p]
            kpath = f"kubernetes/apps/{ns}/kustomization.yaml"
            files[kpath] = [l for l in files[kpath] if l != f"  - ./{app}/ks.yaml"]
            emit(f"D kubernetes/apps/{ns}/{app}\n")
            changed = [kpath]
        elif r < 0.605 and not open_branch:
            # An app moves to another namespace (a directory rename; git pairs the files up).
            k = rnd.randrange(len(apps))
            ns, app = apps[k]
            to = rnd.choice([x for x in NAMESPACES if x != ns])
            if (to, app) not in apps_set:
                old_prefix, new_prefix = f"kubernetes/apps/{ns}/{app}/", f"kubernetes/apps/{to}/{app}/"
                for p in [p for p in files if p.startswith(old_prefix)]:
                    files[new_prefix + p[len(old_prefix):]] = files.pop(p)
                apps[k] = (to, app)
                apps_set.discard((ns, app))
                apps_set.add((to, app))
                emit(f"R kubernetes/apps/{ns}/{app} kubernetes/apps/{to}/{app}\n")
                for kns, add in ((ns, False), (to, True)):
                    kpath = f"kubernetes/apps/{kns}/kustomization.yaml"
                    line = f"  - ./{app}/ks.yaml"
                    files[kpath] = files[kpath] + [line] if add else [l for l in files[kpath] if l != line]
                    changed.append(kpath)
                ks = f"{new_prefix}ks.yaml"
                files[ks] = [l.replace(f"/{ns}/", f"/{to}/").replace(f"&namespace {ns}", f"&namespace {to}")
                             for l in files[ks]]
                changed.append(ks)
        elif r < 0.61:
            # A sweeping change: one line in many files (an API version, an interval, a setting).
            pool = [p for p in files if p.endswith(".yaml")]
            old, new = rnd.choice([("interval: 1h", "interval: 30m"), ("interval: 30m", "interval: 1h"),
                                   ("wait: false", "wait: true"), ("wait: true", "wait: false"),
                                   ("retries: 3", "retries: 5"), ("retries: 5", "retries: 3")])
            for path in rnd.sample(pool, min(len(pool), rnd.randint(20, 150))):
                lines = files[path]
                if any(old in l for l in lines):
                    files[path] = [l.replace(old, new) for l in lines]
                    changed.append(path)
        elif r < 0.612:
            b = f"docs/assets/image{c}.png"
            payload = b"\x89PNG\r\n\x1a\n\0" + bytes(rnd.randrange(256) for _ in range(300))
            if rnd.random() < 0.5:
                payload += f"ghp_{tok(36)}\n".encode()
            if open_branch:
                touched[b] = payload
            emit(f"M 644 inline {b}\n")
            data(payload)
        else:
            # A hand edit: a few lines added, changed or removed in one to three files.
            for path in rnd.sample(list(files), rnd.randint(1, 3)):
                lines = files[path]
                for _ in range(rnd.randint(1, 5)):
                    at = rnd.randint(0, len(lines))
                    prev = lines[at - 1] if at > 0 else ""
                    indent = len(prev) - len(prev.lstrip(" "))
                    new = secret_line(path) if rnd.random() < 0.01 else yaml_filler(indent)
                    if rnd.random() < 0.3 and at < len(lines):
                        lines[at] = new
                    else:
                        lines.insert(at, new)
                while len(lines) > 150 or (len(lines) > 20 and rnd.random() < 0.2):
                    del lines[rnd.randrange(len(lines))]
                changed.append(path)
        for path in sorted(set(changed)):
            if path not in files:
                continue
            body = body_of(path)
            if open_branch:
                touched[path] = body
            emit(f"M 644 inline {path}\n")
            data(body)
        emit("\n")


(homelab if args.shape == "homelab" else grow)(args.commits)
