#!/usr/bin/env python3
"""Builds the schema files the Proxmox simulator embeds from the official PVE API dumps.

Usage: python3 extract.py DIR   (DIR holds schemas/proxmox/ with the dumps; see testdata/README.md for their origin)
Keeps, per endpoint, what the simulator checks (parameters, permissions, allowtoken, return type) and drops
the documentation texts. /access/permissions is not among the selected endpoints; it is taken from the full
9.1.3 tree (its parameters are the same in 8.4).
"""
import json
import sys

DROP = {"description", "verbose_description", "format_description", "typetext", "title", "renderer"}


def strip(node):
    if isinstance(node, dict):
        return {k: strip(v) for k, v in node.items() if not (k in DROP and isinstance(v, str))}
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


def slim(info):
    out = {k: info[k] for k in ("allowtoken", "protected", "proxyto") if k in info}
    out["parameters"] = strip(info.get("parameters", {}))
    if "permissions" in info:
        out["permissions"] = strip(info["permissions"])
    ret = info.get("returns", {})
    out["returns"] = {"type": ret.get("type")}
    return out


def find(tree, path, method):
    for child in tree:
        if child.get("path") == path:
            return child["info"][method]
        hit = find(child.get("children", []), path, method)
        if hit:
            return hit
    return None


def main(shared):
    full = json.load(open(f"{shared}/schemas/proxmox/pve9.1.3-apischema-full-compact.json"))
    perms = find(full, "/access/permissions", "GET")
    for src, dst in (("pve9.1.3-api-selected-endpoints.json", "pve-9.1.json"), ("pve8.4-api-selected-endpoints.json", "pve-8.4.json")):
        data = json.load(open(f"{shared}/schemas/proxmox/{src}"))
        eps = {k: slim(v) for k, v in sorted(data["endpoints"].items())}
        eps["GET /access/permissions"] = slim(perms)
        out = {"source": data["source"], "endpoints": eps}
        with open(dst, "w") as f:
            json.dump(out, f, sort_keys=True, separators=(",", ":"))
            f.write("\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: extract.py DIR  (DIR/schemas/proxmox/ holds the official PVE API dumps)")
    main(sys.argv[1])
