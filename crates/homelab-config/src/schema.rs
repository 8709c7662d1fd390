//! The JSON Schema of `homelab.yaml`, for editors (yaml-language-server) and `homelabctl schema`.
//!
//! Hand-written so every description reads well; a test keeps its property lists equal to the keys the
//! reader accepts, so the two cannot drift apart.

use serde_json::{Value, json};

/// The modeline `init` puts at the top of homelab.yaml so editors complete and check fields.
pub const MODELINE: &str = "# yaml-language-server: $schema=./homelab.schema.json";

fn object(description: &str, required: &[&str], properties: Value) -> Value {
    json!({
        "type": "object",
        "description": description,
        "additionalProperties": false,
        "required": required,
        "properties": properties,
    })
}

fn string(description: &str) -> Value {
    json!({"type": "string", "description": description})
}

fn size(description: &str) -> Value {
    json!({
        "description": description,
        "anyOf": [
            {"type": "integer", "minimum": 1},
            {"type": "string", "pattern": "^[0-9]+ ?(M|Mi|MiB|MB|G|Gi|GiB|GB|T|Ti|TiB|TB)?$"}
        ]
    })
}

/// The schema as a JSON value.
/// A list of Talos config patches: file paths, inline strategic merge patches or inline JSON6902 patches.
fn patches(description: &str) -> Value {
    json!({
        "type": "array",
        "description": format!("{description} Each entry is a patch file path relative to homelab.yaml, or the patch inline: a mapping is a strategic merge patch (Talos' rules, `$patch: delete` included), a list of {{op, path, value}} a JSON6902 patch (applied to the v1alpha1 document)."),
        "items": {"oneOf": [
            {"type": "string", "description": "Patch file (YAML or JSON), relative to homelab.yaml."},
            {"type": "object", "description": "Inline strategic merge patch (one document)."},
            {"type": "array", "items": {"type": "object", "required": ["op", "path"]}, "description": "Inline JSON6902 patch."}
        ]}
    })
}

pub fn json_schema() -> Value {
    let mac = json!({"type": "string", "pattern": "^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$", "description": "Fixed MAC address of the VM's NIC, e.g. BC:24:11:CA:FE:01 (must be unicast)."});
    let cidr = |d: &str| json!({"type": "string", "pattern": "^[0-9A-Fa-f:.]+/[0-9]{1,3}$", "description": d});
    let ip = |d: &str| json!({"type": "string", "description": d});
    let proxmox = object(
        "The Proxmox VE API homelabctl creates VMs through.",
        &["endpoint", "token_id"],
        json!({
            "endpoint": string("https://HOST:8006 of a Proxmox node."),
            "node": string("Proxmox node name VMs are created on (default pve)."),
            "token_id": string("API token id USER@REALM!TOKENID; its secret lives in secrets.enc.yaml."),
            "tls": object("How the Proxmox certificate is trusted (default: system roots). Set at most one.", &[], json!({
                "ca_file": string("PEM CA file (e.g. a copy of /etc/pve/pve-root-ca.pem), relative to homelab.yaml."),
                "fingerprint": {"type": "string", "pattern": "^([0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}$", "description": "SHA-256 certificate fingerprint as Proxmox prints it."},
                "insecure": {"type": "boolean", "description": "Turn certificate verification off (warned; prefer a fingerprint)."}
            })),
            "iso_storage": string("Storage for the Talos ISO, with content type iso (default local)."),
        }),
    );
    let image = object(
        "The Talos image built by the Image Factory.",
        &[],
        json!({
            "factory": string("Image Factory URL (default https://factory.talos.dev)."),
            "talos_version": string("Talos release, v1.12.0 or newer (default v1.12.4)."),
            "platform": {"enum": ["metal", "nocloud"], "description": "Talos platform of the ISO and installer (default nocloud)."},
            "secureboot": {"type": "boolean", "description": "Boot the SecureBoot ISO and install the SecureBoot installer (default true)."},
            "extensions": {"type": "array", "items": {"type": "string"}, "description": "Official system extensions (default siderolabs/qemu-guest-agent, siderolabs/nfs-utils)."}
        }),
    );
    let cluster = object(
        "The Kubernetes cluster.",
        &[],
        json!({
            "name": string("Cluster name (default homelab)."),
            "endpoint": string("Kubernetes API endpoint https://HOST:6443 (default: the VIP or first control plane)."),
            "kubernetes_version": string("Kubernetes version (default the one the Talos release ships: 1.35.0 for 1.12)."),
            "pod_subnets": {"type": "array", "items": cidr("Pod subnet."), "description": "Default [10.244.0.0/16]."},
            "service_subnets": {"type": "array", "items": cidr("Service subnet."), "description": "Default [10.96.0.0/12]."},
            "allow_scheduling_on_control_planes": {"type": "boolean", "description": "Run workloads on control planes (default true when there are no workers)."},
            "vip": ip("Shared virtual IP for several control planes."),
            "patches": patches("Your own Talos config patches for every node, applied first of your patches (after rendering)."),
            "role_patches": object("Talos config patches per role, applied after `cluster.patches`.", &[], json!({
                "controlplane": patches("Patches for the control planes."),
                "worker": patches("Patches for the workers.")
            })),
            "bootstrap_timeout": {"type": "integer", "minimum": 30, "maximum": 86400, "description": "Seconds to keep asking Talos to bootstrap etcd while it waits for CRI and time sync (NTP) (default 600)."}
        }),
    );
    let node = object(
        "One Talos VM.",
        &["name", "vm_id", "network"],
        json!({
            "name": string("Hostname and VM name."),
            "role": {"enum": ["controlplane", "worker"], "description": "Default controlplane."},
            "vm_id": {"type": "integer", "minimum": 100, "maximum": 999999999, "description": "Proxmox VM id."},
            "proxmox_node": string("Proxmox node for this VM (default proxmox.node)."),
            "cores": {"type": "integer", "minimum": 1, "maximum": 512, "description": "vCPU cores (default 4)."},
            "memory": size("Memory, e.g. 8GiB; a bare number is MiB (default 8GiB)."),
            "disk": object("System disk.", &[], json!({
                "size": size("Disk size, e.g. 64GiB; a bare number is GiB (default 64GiB)."),
                "storage": string("Proxmox storage with content type images (default local-lvm).")
            })),
            "network": object("The node's NIC and static address.", &["mac", "address", "gateway"], json!({
                "bridge": string("Proxmox bridge (default vmbr0)."),
                "vlan": {"type": "integer", "minimum": 1, "maximum": 4094, "description": "VLAN tag."},
                "mac": mac,
                "address": cidr("Static address with prefix, e.g. 192.168.20.100/24."),
                "gateway": ip("Default gateway inside the node's subnet."),
                "nameservers": {"type": "array", "items": {"type": "string"}, "description": "DNS servers (default: the gateway)."}
            })),
            "install_disk": string("Disk Talos installs to (default /dev/sda)."),
            "encryption": {"enum": ["tpm", "none"], "description": "STATE/EPHEMERAL encryption: LUKS2 sealed by the TPM, or none (default tpm)."},
            "maintenance_address": ip("Address of the node in maintenance mode if the guest agent cannot report it."),
            "patches": patches("This node's own Talos config patches, applied last (after cluster and role patches).")
        }),
    );
    let gitops = object(
        "The Flux GitOps tree.",
        &["repository"],
        json!({
            "path": string("Flux tree relative to the repository root (default kubernetes)."),
            "repository": object("The Git repository Flux syncs from.", &["url"], json!({
                "url": string("ssh://git@github.com/OWNER/REPO.git or https://…"),
                "branch": string("Branch (default main).")
            })),
            "nfs": object("NFS server for the dynamic provisioner.", &["server", "export"], json!({
                "server": string("NFS server host, e.g. nas.home."),
                "export": string("Exported path, e.g. /volume1/kubernetes.")
            }))
        }),
    );
    let mut root = object(
        "homelab.yaml: the declarative description of a TalosOS homelab on Proxmox VE (homelabctl).",
        &["proxmox", "nodes"],
        json!({
            "proxmox": proxmox,
            "image": image,
            "cluster": cluster,
            "nodes": {"type": "array", "items": node, "minItems": 1},
            "gitops": gitops,
        }),
    );
    if let Some(map) = root.as_object_mut() {
        map.insert(
            "$schema".into(),
            json!("https://json-schema.org/draft/2020-12/schema"),
        );
        map.insert("title".into(), json!("homelab.yaml"));
    }
    root
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read;

    fn keys(schema: &Value) -> Vec<String> {
        let mut k: Vec<String> = schema["properties"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        k.sort();
        k
    }

    fn sorted(list: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn schema_properties_match_the_keys_the_reader_accepts() {
        let s = json_schema();
        assert_eq!(keys(&s), sorted(read::TOP_KEYS));
        assert_eq!(
            keys(&s["properties"]["proxmox"]),
            sorted(read::PROXMOX_KEYS)
        );
        assert_eq!(
            keys(&s["properties"]["proxmox"]["properties"]["tls"]),
            sorted(read::TLS_KEYS)
        );
        assert_eq!(keys(&s["properties"]["image"]), sorted(read::IMAGE_KEYS));
        assert_eq!(
            keys(&s["properties"]["cluster"]),
            sorted(read::CLUSTER_KEYS)
        );
        let node = &s["properties"]["nodes"]["items"];
        assert_eq!(keys(node), sorted(read::NODE_KEYS));
        assert_eq!(keys(&node["properties"]["disk"]), sorted(read::DISK_KEYS));
        assert_eq!(
            keys(&node["properties"]["network"]),
            sorted(read::NETWORK_KEYS)
        );
        assert_eq!(keys(&s["properties"]["gitops"]), sorted(read::GITOPS_KEYS));
        assert_eq!(
            keys(&s["properties"]["gitops"]["properties"]["repository"]),
            sorted(read::REPOSITORY_KEYS)
        );
        assert_eq!(
            keys(&s["properties"]["gitops"]["properties"]["nfs"]),
            sorted(read::NFS_KEYS)
        );
    }
}
