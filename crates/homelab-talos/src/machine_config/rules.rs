//! Talos' semantic rules that the JSON Schema cannot express, checked on the inputs and again on the
//! final documents (after the user's patches), with messages that say what to change.

use serde_json::Value;

use super::patch::{doc_kind, doc_name};
use super::{ConfigError, Encryption, KUBERNETES_MAX, KUBERNETES_MIN, MachineConfigInput};

/// A Talos rule the final documents break.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RuleError {
    #[error(
        "HostnameConfig: 'auto' and 'hostname' cannot be set at the same time; remove `auto` (a static hostname needs no `auto`)"
    )]
    HostnameAutoAndStatic,
    #[error("HostnameConfig: `auto: off` needs a `hostname`")]
    HostnameOffWithoutName,
    #[error(
        "static hostname is already set in v1alpha1 config (`machine.network.hostname`); set it only in HostnameConfig"
    )]
    HostnameInV1alpha1,
    #[error(
        "stable hostname is already set in v1alpha1 config (`machine.features.stableHostname`); remove it, HostnameConfig owns the hostname"
    )]
    StableHostnameInV1alpha1,
    #[error("the config has no v1alpha1 document (`version: v1alpha1`); Talos refuses it")]
    NoV1alpha1,
    #[error("document {kind}{} appears twice; patch the existing one instead", .name.as_deref().map(|n| format!(" `{n}`")).unwrap_or_default())]
    Duplicate { kind: String, name: Option<String> },
    #[error("{0}")]
    V1alpha1(String),
    #[error("VolumeConfig {name}: {reason}")]
    Volume { name: String, reason: String },
}

fn input_error(field: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Input {
        field,
        reason: reason.into(),
    }
}

/// Checks on the inputs before anything is generated.
pub(super) fn check_input(input: &MachineConfigInput) -> Result<(), ConfigError> {
    let c = &input.cluster;
    let n = &input.node;
    if c.name.is_empty() || !is_dns_label_chars(&c.name) {
        return Err(input_error(
            "cluster.name",
            "use lowercase letters, digits, `-` and `.`",
        ));
    }
    check_endpoint(&c.endpoint)?;
    check_kubernetes_version(&c.kubernetes_version, &input.installer_image)?;
    for (field, subnets) in [
        ("cluster.pod_subnets", &c.pod_subnets),
        ("cluster.service_subnets", &c.service_subnets),
    ] {
        if subnets.is_empty() {
            return Err(input_error(field, "at least one subnet is needed"));
        }
        for s in subnets {
            parse_cidr(s).ok_or_else(|| {
                input_error(field, format!("`{s}` is not a CIDR like 10.244.0.0/16"))
            })?;
        }
    }
    check_hostname(&n.name)?;
    let max_prefix = if n.address.is_ipv4() { 32 } else { 128 };
    if n.prefix == 0 || n.prefix > max_prefix {
        return Err(input_error(
            "node.prefix",
            format!("must be 1..={max_prefix} for {}", n.address),
        ));
    }
    if n.gateway.is_ipv4() != n.address.is_ipv4() {
        return Err(input_error(
            "node.gateway",
            "the gateway and the address must be the same IP family",
        ));
    }
    if n.gateway == n.address {
        return Err(input_error(
            "node.gateway",
            "the gateway cannot be the node's own address",
        ));
    }
    if !is_mac(&n.mac) {
        return Err(input_error(
            "node.mac",
            format!("`{}` is not a MAC address like BC:24:11:CA:FE:01", n.mac),
        ));
    }
    if !n.install_disk.starts_with("/dev/") {
        return Err(input_error(
            "node.install_disk",
            "must be a device path like /dev/sda",
        ));
    }
    if let Some(vip) = c.vip {
        if vip == n.address {
            return Err(input_error(
                "cluster.vip",
                "the VIP must differ from every node's own address",
            ));
        }
        if vip.is_ipv4() != n.address.is_ipv4() {
            return Err(input_error(
                "cluster.vip",
                "the VIP and the node address must be the same IP family",
            ));
        }
    }
    let image = input.installer_image.as_str();
    if image.is_empty() {
        return Err(input_error(
            "installer_image",
            "required: without it Talos installs the vanilla installer, not the Image Factory one",
        ));
    }
    if image.starts_with("ghcr.io/siderolabs/installer") {
        return Err(input_error(
            "installer_image",
            "the vanilla installer lacks the schematic's extensions and SecureBoot; use the Image Factory installer",
        ));
    }
    if n.encryption == Encryption::Tpm && !image.contains("-secureboot") {
        return Err(input_error(
            "installer_image",
            "TPM-sealed disk encryption needs SecureBoot: use a `…-installer-secureboot/…` image",
        ));
    }
    Ok(())
}

fn check_endpoint(endpoint: &str) -> Result<(), ConfigError> {
    let url = reqwest::Url::parse(endpoint).map_err(|e| {
        input_error(
            "cluster.endpoint",
            format!("`{endpoint}` is not a URL ({e})"),
        )
    })?;
    if url.scheme() != "https" || url.host_str().is_none() {
        return Err(input_error(
            "cluster.endpoint",
            format!("`{endpoint}` must be https://HOST:PORT"),
        ));
    }
    Ok(())
}

/// The Talos minor an installer image installs (its tag, `…:v1.13.9` → 13), and the Kubernetes minors that
/// release runs (Talos' compatibility tables: each minor moves the six-minor window by one, 1.12 runs
/// 1.30–1.35). An installer without a readable tag gets Talos 1.12's window.
fn kubernetes_window(installer_image: &str) -> (u64, (u64, u64), (u64, u64)) {
    let talos_minor = installer_image.rsplit_once(":v").and_then(|(_, tag)| {
        let mut parts = tag.split('.');
        let major: u64 = parts.next()?.parse().ok()?;
        let minor: u64 = parts.next()?.parse().ok()?;
        (major == 1 && minor >= 10).then_some(minor)
    });
    match talos_minor {
        Some(minor) => (minor, (1, minor + 18), (1, minor + 23)),
        None => (12, KUBERNETES_MIN, KUBERNETES_MAX),
    }
}

fn check_kubernetes_version(version: &str, installer_image: &str) -> Result<(), ConfigError> {
    let v = version.strip_prefix('v').unwrap_or(version);
    let parts: Vec<Option<u64>> = v.split('.').map(|p| p.parse().ok()).collect();
    let bad = || {
        input_error(
            "cluster.kubernetes_version",
            format!("`{version}` is not a version like 1.35.0"),
        )
    };
    let [Some(major), Some(minor), Some(_patch)] = parts.as_slice() else {
        return Err(bad());
    };
    let (talos_minor, min, max) = kubernetes_window(installer_image);
    if (*major, *minor) < min || (*major, *minor) > max {
        return Err(input_error(
            "cluster.kubernetes_version",
            format!(
                "Talos 1.{talos_minor} supports Kubernetes {}.{}.0 to {}.{}.x, not {version}",
                min.0, min.1, max.0, max.1
            ),
        ));
    }
    Ok(())
}

/// Hostname rules of HostnameConfig: ≤ 253 characters, first label 1–63.
fn check_hostname(name: &str) -> Result<(), ConfigError> {
    let labels_ok = name.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && is_dns_label_chars(l)
    });
    if name.is_empty() || name.len() > 253 || !labels_ok {
        return Err(input_error(
            "node.name",
            format!(
                "`{name}` is not a valid hostname (labels of 1-63 lowercase letters, digits, `-`)"
            ),
        ));
    }
    Ok(())
}

fn is_dns_label_chars(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
}

fn is_mac(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

fn parse_cidr(s: &str) -> Option<()> {
    let (ip, prefix) = s.split_once('/')?;
    let ip: std::net::IpAddr = ip.parse().ok()?;
    let prefix: u8 = prefix.parse().ok()?;
    (prefix <= if ip.is_ipv4() { 32 } else { 128 }).then_some(())
}

/// Checks on the final documents (Talos' validation rules that the schema does not carry).
pub fn check_documents(docs: &[Value]) -> Result<(), RuleError> {
    let mut seen: Vec<(&str, Option<&str>)> = Vec::new();
    for d in docs {
        let key = (doc_kind(d), doc_name(d));
        if seen.contains(&key) {
            return Err(RuleError::Duplicate {
                kind: key.0.to_string(),
                name: key.1.map(str::to_string),
            });
        }
        seen.push(key);
    }
    let v1 = docs
        .iter()
        .find(|d| doc_kind(d) == "v1alpha1")
        .ok_or(RuleError::NoV1alpha1)?;
    check_v1alpha1(v1)?;
    let has_hostname_doc = docs.iter().any(|d| doc_kind(d) == "HostnameConfig");
    for d in docs {
        match doc_kind(d) {
            "HostnameConfig" => {
                let auto = d.get("auto").and_then(Value::as_str);
                let name = d
                    .get("hostname")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty());
                match (auto, name) {
                    (Some(a), Some(_)) if a != "off" => {
                        return Err(RuleError::HostnameAutoAndStatic);
                    }
                    (Some("off"), None) => return Err(RuleError::HostnameOffWithoutName),
                    _ => {}
                }
            }
            "VolumeConfig" => check_volume(d)?,
            _ => {}
        }
    }
    if has_hostname_doc {
        if v1
            .pointer("/machine/network/hostname")
            .is_some_and(|h| !h.is_null())
        {
            return Err(RuleError::HostnameInV1alpha1);
        }
        if v1.pointer("/machine/features/stableHostname") == Some(&Value::Bool(true)) {
            return Err(RuleError::StableHostnameInV1alpha1);
        }
    }
    Ok(())
}

fn check_v1alpha1(v1: &Value) -> Result<(), RuleError> {
    let err = |m: &str| Err(RuleError::V1alpha1(m.to_string()));
    if v1.get("persist") == Some(&Value::Bool(false)) {
        return err(".persist should be enabled");
    }
    let Some(machine) = v1.get("machine") else {
        return err("machine instructions are required");
    };
    let cp = match machine.get("type").and_then(Value::as_str) {
        Some("controlplane") | Some("init") => true,
        Some("worker") => false,
        _ => return err("machine.type must be `controlplane` or `worker`"),
    };
    let endpoint = v1
        .pointer("/cluster/controlPlane/endpoint")
        .and_then(Value::as_str);
    match endpoint.map(reqwest::Url::parse) {
        Some(Ok(_)) => {}
        Some(Err(_)) => return err("cluster.controlPlane.endpoint must be a valid URL"),
        None => return err("cluster.controlPlane.endpoint is required"),
    }
    let has = |p: &str| {
        v1.pointer(p)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    };
    if !has("/machine/install/disk") && v1.pointer("/machine/install/diskSelector").is_none() {
        return err(
            "machine.install.disk or machine.install.diskSelector is required to install Talos",
        );
    }
    if !has("/machine/install/image") {
        return err(
            "machine.install.image is required: without it Talos installs the vanilla installer",
        );
    }
    if v1.pointer("/machine/install/grubUseUKICmdline") == Some(&Value::Bool(true))
        && v1
            .pointer("/machine/install/extraKernelArgs")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
    {
        return err(
            "machine.install.grubUseUKICmdline cannot be combined with machine.install.extraKernelArgs",
        );
    }
    if cp {
        if !has("/machine/ca/crt") || !has("/machine/ca/key") {
            return err(
                "a control plane needs machine.ca with both crt and key (the Talos API CA)",
            );
        }
        let secretbox = has("/cluster/secretboxEncryptionSecret");
        let aescbc = has("/cluster/aescbcEncryptionSecret");
        if secretbox == aescbc {
            return err(
                "exactly one of cluster.secretboxEncryptionSecret and cluster.aescbcEncryptionSecret is needed",
            );
        }
    } else {
        if has("/machine/ca/key") {
            return err("a worker must not carry the Talos API CA key (machine.ca.key)");
        }
        if has("/cluster/ca/key") {
            return err("a worker must not carry the Kubernetes CA key (cluster.ca.key)");
        }
    }
    Ok(())
}

fn check_volume(d: &Value) -> Result<(), RuleError> {
    let name = doc_name(d).unwrap_or("").to_string();
    let fail = |reason: &str| {
        Err(RuleError::Volume {
            name: name.clone(),
            reason: reason.to_string(),
        })
    };
    if !matches!(name.as_str(), "STATE" | "EPHEMERAL" | "IMAGECACHE") {
        return fail("name must be STATE, EPHEMERAL or IMAGECACHE");
    }
    if name == "STATE" && d.get("provisioning").is_some() {
        return fail("provisioning cannot be set for STATE");
    }
    if let Some(enc) = d.get("encryption") {
        if enc.get("provider").and_then(Value::as_str) != Some("luks2") {
            return fail("encryption.provider must be luks2");
        }
        let keys = enc
            .get("keys")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        if keys.is_empty() {
            return fail("encryption needs at least one key");
        }
        let mut slots = Vec::new();
        for k in keys {
            let slot = k.get("slot").and_then(Value::as_u64);
            if slot.is_none() {
                return fail("every encryption key needs a `slot`");
            }
            if slots.contains(&slot) {
                return fail("two encryption keys use the same slot");
            }
            slots.push(slot);
            let kinds = ["static", "nodeID", "kms", "tpm"]
                .iter()
                .filter(|t| k.get(**t).is_some())
                .count();
            if kinds != 1 {
                return fail("each key needs exactly one of static, nodeID, kms, tpm");
            }
            if name == "STATE" && k.get("lockToState") == Some(&Value::Bool(true)) {
                return fail("lockToState is not allowed on STATE");
            }
        }
    }
    Ok(())
}
