#!/usr/bin/env python3
"""Generates crates/homelab-kustomize/data/smp-schema.json: the strategic-merge-patch facts (merge keys,
patch strategies, nested types) of the Kubernetes built-in kinds, from the local-strict JSON schemas.

Usage: scripts/gen-smp-schema.py   (reads the embedded schemas in crates/homelab-schemas/data)
"""
import json, os, sys

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
defs = json.load(open(os.path.join(
    root, "crates/homelab-schemas/data/kubernetes/v1.35.0-local-strict/_definitions.json")))["$defs"]

def ref_of(p):
    r = p.get("$ref")
    if r is None and "allOf" in p and len(p["allOf"]) == 1:
        r = p["allOf"][0].get("$ref")
    return r.split("/")[-1] if r else None

out_defs, gvk = {}, {}
for name, d in defs.items():
    for g in d.get("x-kubernetes-group-version-kind", []):
        api = (g["group"] + "/" if g["group"] else "") + g["version"]
        gvk[api + "/" + g["kind"]] = name
    props = {}
    for pname, p in (d.get("properties") or {}).items():
        e = {}
        if p.get("type") in ("array", ["array", "null"]) or "items" in p:
            e["list"] = 1
            items = p.get("items") or {}
            r = ref_of(items)
            if r:
                e["ref"] = r
        else:
            r = ref_of(p)
            if r:
                e["ref"] = r
        if "x-kubernetes-patch-strategy" in p:
            e["strategy"] = p["x-kubernetes-patch-strategy"]
        if "x-kubernetes-patch-merge-key" in p:
            e["key"] = p["x-kubernetes-patch-merge-key"]
        if e.get("ref") or e.get("strategy"):
            props[pname] = e
    if props:
        out_defs[name] = props

# keep only definitions reachable from a kind
reach, stack = set(), list(gvk.values())
while stack:
    n = stack.pop()
    if n in reach:
        continue
    reach.add(n)
    for e in out_defs.get(n, {}).values():
        if "ref" in e:
            stack.append(e["ref"])
out = {"gvk": dict(sorted(gvk.items())), "defs": {k: out_defs[k] for k in sorted(out_defs) if k in reach}}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../crates/homelab-kustomize/data/smp-schema.json")
with open(path, "w") as f:
    json.dump(out, f, separators=(",", ":"), sort_keys=True)
    f.write("\n")
print(f"wrote {path}: {len(out['gvk'])} kinds, {len(out['defs'])} definitions")
