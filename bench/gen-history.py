#!/usr/bin/env python3
"""Writes a `git fast-import` stream of a synthetic homelab history with planted secrets.

    bench/gen-history.py COMMITS [SEED] | git -C REPO fast-import --quiet

The history has YAML, env and code files that grow and change, commits on a main branch and on short
feature branches merged back (merge commits), renames (some with edits in the same commit), deletions,
binary files (with NUL bytes, some holding a token), and secrets of several gitleaks rule types
(github-pat, aws-access-token, slack-bot-token, gitlab-pat, private-key, generic-api-key, and
base64-encoded aws keys that only decoding finds) planted across commits. Every secret is random,
made at run time. The same COMMITS and SEED give the same repository.
"""
import random
import sys

n = int(sys.argv[1])
rnd = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 42)
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


files = {f"kubernetes/apps/app{i}/values.yaml": [] for i in range(60)}
files.update({f"src/module{i}.py": [] for i in range(40)})
files.update({f"env/site{i}.env": [] for i in range(20)})
binaries = {}
out = sys.stdout.buffer
mark = 0
branch_of = {"main": None}
open_branch = None  # [name, commits left, first commit pending]
written = set()  # paths that exist in the repository
touched = {}  # path -> content bytes written on the open branch (the merge brings them to main)


def emit(s):
    out.write(s if isinstance(s, bytes) else s.encode())


def data(body):
    emit(f"data {len(body)}\n")
    emit(body)
    emit("\n")


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
