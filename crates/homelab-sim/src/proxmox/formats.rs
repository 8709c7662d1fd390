//! PVE's named string formats (`pve-vmid`, `mac-addr`, `pve-storage-id`, …) and property-string parsing
//! (`net0=virtio=MAC,bridge=vmbr0`), with the error texts PVE's JSONSchema.pm produces.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use regex::Regex;
use serde_json::Value;

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("the simulator's own format regexes compile"))
}

macro_rules! regex {
    ($p:expr) => {{
        static CELL: OnceLock<Regex> = OnceLock::new();
        re(&CELL, $p)
    }};
}

/// Checks `value` against a named format; `Err(text)` is the message after "invalid format - ".
pub(crate) fn check_named(format: &str, value: &str) -> Result<(), String> {
    match format {
        "pve-node" => ok_if(regex!(r"^[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?$").is_match(value), || {
            "value does not look like a valid node name".into()
        }),
        "pve-vmid" => ok_if(regex!(r"^[1-9][0-9]+$").is_match(value), || "value does not look like a valid VM ID".into()),
        "pve-storage-id" => ok_if(regex!(r"^(?i:[a-z][a-z0-9\-_.]*[a-z0-9])$").is_match(value), || {
            format!("storage ID '{value}' contains illegal characters")
        }),
        "pve-configid" => ok_if(regex!(r"^(?i:[a-z][a-z0-9_-]+)$").is_match(value), || {
            format!("invalid configuration ID '{value}'")
        }),
        "pve-configid-list" => {
            for id in value.split([',', ';', ' ']).filter(|s| !s.is_empty()) {
                check_named("pve-configid", id)?;
            }
            Ok(())
        }
        "mac-addr" => ok_if(is_unicast_mac(value), || "value does not look like a valid unicast MAC address".into()),
        "pve-bridge-id" => ok_if(regex!(r"^[-_.\w\d]+$").is_match(value), || format!("invalid bridge ID '{value}'")),
        "dns-name" => ok_if(
            regex!(r"^(?:(?:[a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?)\.)*(?:[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)$")
                .is_match(value),
            || "value does not look like a valid DNS name".into(),
        ),
        "disk-size" => ok_if(regex!(r"^(\d+(\.\d+)?)([KMGT])?$").is_match(value), || {
            format!("unable to parse size '{value}'")
        }),
        "pve-volume-id" => check_volume_id(value),
        "pve-volume-id-or-qm-path" => {
            if value == "none" || value == "cdrom" || value.starts_with('/') {
                Ok(())
            } else {
                check_volume_id(value)
            }
        }
        "pve-volume-id-or-absolute-path" => {
            if value.starts_with('/') { Ok(()) } else { check_volume_id(value) }
        }
        "pve-tag-list" => {
            for tag in value.split([';', ',', ' ']).filter(|s| !s.is_empty()) {
                if !regex!(r"^(?i:[a-z0-9_][a-z0-9_\-+.]*)$").is_match(tag) {
                    return Err(format!("invalid tag '{tag}'"));
                }
            }
            Ok(())
        }
        "pve-storage-content" => ok_if(CONTENT_TYPES.contains(&value), || format!("invalid content type '{value}'")),
        "pve-storage-content-list" => {
            for c in value.split([',', ';', ' ']).filter(|s| !s.is_empty()) {
                check_named("pve-storage-content", c)?;
            }
            Ok(())
        }
        "urlencoded" => ok_if(regex!(r"^[-%a-zA-Z0-9_.!~*'()]*$").is_match(value), || {
            format!("value '{value}' is not urlencoded")
        }),
        "pve-qm-boot" => check_boot(value),
        "pve-vm-cpu-conf" => check_cpu(value),
        "pve-qm-ipconfig" => check_ipconfig(value),
        "ipv4" => ok_if(value.parse::<std::net::Ipv4Addr>().is_ok(), || {
            "value does not look like a valid IPv4 address".into()
        }),
        "ipv6" => ok_if(value.parse::<std::net::Ipv6Addr>().is_ok(), || {
            "value does not look like a valid IPv6 address".into()
        }),
        "pve-ipv4-config" => ok_if(matches!(value, "dhcp" | "manual") || is_cidr_v4(value), || {
            "value does not look like a valid ipv4 network configuration".into()
        }),
        "pve-ipv6-config" => ok_if(
            matches!(value, "auto" | "dhcp" | "manual") || is_cidr_v6(value),
            || "value does not look like a valid ipv6 network configuration".into(),
        ),
        "address-list" => {
            for addr in value.split([',', ';', ' ']).filter(|s| !s.is_empty()) {
                if addr.parse::<std::net::IpAddr>().is_err() {
                    return Err(format!("value does not look like a valid address: {addr}"));
                }
            }
            Ok(())
        }
        // Other registered formats (hostpci, smbios1, cicustom, …) are not modelled: accepted as given.
        _ => Ok(()),
    }
}

/// Storage content types PVE knows.
pub(crate) const CONTENT_TYPES: &[&str] = &[
    "images", "rootdir", "vztmpl", "backup", "iso", "snippets", "import",
];

fn ok_if(ok: bool, msg: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(msg()) }
}

/// Whether a config key is a drive slot (`scsi0`, `ide2`, `efidisk0`, …).
pub(crate) fn is_drive_slot(key: &str) -> bool {
    let base = key.trim_end_matches(|c: char| c.is_ascii_digit());
    matches!(
        base,
        "scsi" | "virtio" | "sata" | "ide" | "efidisk" | "tpmstate"
    )
}

pub(crate) fn is_unicast_mac(value: &str) -> bool {
    if !regex!(r"^(?i:[a-f0-9]{2}(?::[a-f0-9]{2}){5})$").is_match(value) {
        return false;
    }
    u8::from_str_radix(&value[0..2], 16).is_ok_and(|b| b & 1 == 0)
}

fn check_volume_id(value: &str) -> Result<(), String> {
    ok_if(
        regex!(r"^(?i:([a-z][a-z0-9\-_.]*[a-z0-9]):(.+))$").is_match(value),
        || format!("unable to parse volume ID '{value}'"),
    )
}

fn check_boot(value: &str) -> Result<(), String> {
    let schema = boot_schema();
    let parsed = parse_property_string(value, &schema).map_err(|e| e.render_inline("boot"))?;
    if let Some(order) = parsed.get("order") {
        for dev in order.split(';') {
            if !regex!(r"^(ide\d+|sata\d+|scsi\d+|virtio\d+|net\d+|hostpci\d+|usb\d+|mpath\d+)$")
                .is_match(dev)
            {
                return Err(format!(
                    "format error\nboot.order: invalid boot device '{dev}'\n"
                ));
            }
        }
    }
    Ok(())
}

fn boot_schema() -> BTreeMap<String, Value> {
    let v = serde_json::json!({
        "legacy": {"type": "string", "optional": 1, "default_key": 1, "pattern": "[acdn]{1,4}"},
        "order": {"type": "string", "optional": 1}
    });
    v.as_object()
        .map(|m| m.clone().into_iter().collect())
        .unwrap_or_default()
}

fn check_cpu(value: &str) -> Result<(), String> {
    let v = serde_json::json!({
        "cputype": {"type": "string", "default_key": 1, "optional": 1, "pattern": "(?:custom-)?[a-zA-Z0-9_.\\-]+"},
        "flags": {"type": "string", "optional": 1, "pattern": "(?:[+-][a-zA-Z0-9\\-_.]+)(?:;[+-][a-zA-Z0-9\\-_.]+)*"},
        "hidden": {"type": "boolean", "optional": 1},
        "hv-vendor-id": {"type": "string", "optional": 1},
        "phys-bits": {"type": "string", "optional": 1},
        "reported-model": {"type": "string", "optional": 1}
    });
    check_against("cpu", value, &v)
}

/// Parses `value` as a property string of the inline `format` and checks every key, as PVE's
/// `check_format` does for a registered format given as a hash; errors are keyed `name.key`.
fn check_against(name: &str, value: &str, format: &Value) -> Result<(), String> {
    let schema: BTreeMap<String, Value> = format
        .as_object()
        .map(|m| m.clone().into_iter().collect())
        .unwrap_or_default();
    let parsed = parse_property_string(value, &schema).map_err(|e| e.render_inline(name))?;
    let mut errors = BTreeMap::new();
    super::schema::check_object(name, &schema, &parsed, &mut errors);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(PropError::Fields(errors).render_inline(name))
    }
}

/// `pve_verify_cidrv4`: an IPv4 address with a prefix length from 8 to 32.
fn is_cidr_v4(value: &str) -> bool {
    value.split_once('/').is_some_and(|(ip, len)| {
        ip.parse::<std::net::Ipv4Addr>().is_ok()
            && len.parse::<u8>().is_ok_and(|n| (8..=32).contains(&n))
    })
}

/// `pve_verify_cidrv6`: an IPv6 address with a prefix length from 8 to 128.
fn is_cidr_v6(value: &str) -> bool {
    value.split_once('/').is_some_and(|(ip, len)| {
        ip.parse::<std::net::Ipv6Addr>().is_ok()
            && len.parse::<u8>().is_ok_and(|n| (8..=128).contains(&n))
    })
}

/// `pve-qm-ipconfig` (qemu-server `PVE::QemuServer::Network`): `ip=CIDR|dhcp,gw=IPv4,ip6=…,gw6=…`, each
/// gateway requiring its address.
fn check_ipconfig(value: &str) -> Result<(), String> {
    let v = serde_json::json!({
        "ip": {"type": "string", "format": "pve-ipv4-config", "optional": 1, "default": "dhcp"},
        "gw": {"type": "string", "format": "ipv4", "optional": 1, "requires": "ip"},
        "ip6": {"type": "string", "format": "pve-ipv6-config", "optional": 1, "default": "dhcp"},
        "gw6": {"type": "string", "format": "ipv6", "optional": 1, "requires": "ip6"}
    });
    check_against("ipconfig", value, &v)
}

/// Why a property string failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PropError {
    /// A structural problem (`die` in PVE): the whole text.
    Die(String),
    /// Per-key problems (`raise "format error"` with `errors`), keyed `param.key`.
    Fields(BTreeMap<String, String>),
}

impl PropError {
    /// The text PVE puts after "invalid format - ".
    pub(crate) fn render_inline(&self, _param: &str) -> String {
        match self {
            PropError::Die(text) => text.clone(),
            PropError::Fields(errors) => {
                let mut s = String::from("format error\n");
                for (k, v) in errors {
                    s.push_str(&format!("{k}: {}\n", v.trim_end()));
                }
                s
            }
        }
    }
}

/// Splits `a=b,c,d=e` the way PVE's `parse_property_string` does (aliases, key aliases, default key).
pub(crate) fn parse_property_string(
    value: &str,
    format: &BTreeMap<String, Value>,
) -> Result<BTreeMap<String, String>, PropError> {
    let default_key = format
        .iter()
        .find(|(_, s)| {
            s.get("default_key")
                .is_some_and(|d| d.as_i64() == Some(1) || d.as_bool() == Some(true))
        })
        .map(|(k, _)| k.clone());
    let mut res: BTreeMap<String, String> = BTreeMap::new();
    for part in value.split(',') {
        if part.trim().is_empty() {
            continue;
        }
        if let Some((k, v)) = part
            .split_once('=')
            .filter(|(k, v)| !k.is_empty() && !v.is_empty())
        {
            if res.contains_key(k) {
                return Err(PropError::Die(format!(
                    "duplicate key in comma-separated list property: {k}\n"
                )));
            }
            let mut key = k.to_string();
            if let Some(schema) = format.get(k)
                && let Some(alias) = schema.get("alias").and_then(Value::as_str)
            {
                if let Some(key_alias) = schema.get("keyAlias").and_then(Value::as_str) {
                    if res.contains_key(key_alias) {
                        return Err(PropError::Die(format!(
                            "key alias '{key_alias}' is already defined\n"
                        )));
                    }
                    res.insert(key_alias.to_string(), k.to_string());
                }
                key = alias.to_string();
            }
            let Some(schema) = format.get(&key) else {
                return Err(PropError::Die(format!(
                    "invalid key in comma-separated list property: {key}\n"
                )));
            };
            let v = if schema.get("type").and_then(Value::as_str) == Some("boolean") {
                parse_boolean(v)
                    .map(|b| if b { "1" } else { "0" }.to_string())
                    .unwrap_or_else(|| v.to_string())
            } else {
                v.to_string()
            };
            res.insert(key, v);
        } else if !part.contains('=') {
            let Some(dk) = &default_key else {
                return Err(PropError::Die(
                    "value without key, but schema does not define a default key\n".into(),
                ));
            };
            if res.contains_key(dk) {
                return Err(PropError::Die(format!(
                    "duplicate key in comma-separated list property: {dk}\n"
                )));
            }
            res.insert(dk.clone(), part.to_string());
        } else {
            return Err(PropError::Die(
                "missing key in comma-separated list property\n".into(),
            ));
        }
    }
    Ok(res)
}

/// `1|0|on|off|yes|no|true|false`, as inside property strings.
pub(crate) fn parse_boolean(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "on" | "yes" | "true" => Some(true),
        "0" | "off" | "no" | "false" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unicast_macs_only() {
        assert!(is_unicast_mac("BC:24:11:CA:FE:01"));
        assert!(is_unicast_mac("bc:24:11:ca:fe:01"));
        assert!(!is_unicast_mac("BD:24:11:CA:FE:01"), "multicast bit set");
        assert!(!is_unicast_mac("BC:24:11:CA:FE"));
    }

    #[test]
    fn model_equals_mac_is_a_key_alias() {
        let format: BTreeMap<String, Value> = serde_json::from_str(
            r#"{"model":{"type":"string","default_key":1},"macaddr":{"type":"string","optional":1},
                "virtio":{"alias":"macaddr","keyAlias":"model"},"bridge":{"type":"string","optional":1}}"#,
        )
        .expect("json");
        let p = parse_property_string("virtio=BC:24:11:CA:FE:01,bridge=vmbr0", &format)
            .expect("parses");
        assert_eq!(p["model"], "virtio");
        assert_eq!(p["macaddr"], "BC:24:11:CA:FE:01");
        assert_eq!(p["bridge"], "vmbr0");
        assert!(matches!(
            parse_property_string("virtio,bridge=a,bridge=b", &format),
            Err(PropError::Die(_))
        ));
        assert!(
            matches!(parse_property_string("foo=1", &format), Err(PropError::Die(t)) if t.contains("invalid key"))
        );
    }

    #[test]
    fn boot_order_lists_devices() {
        assert!(check_named("pve-qm-boot", "order=scsi0;ide2").is_ok());
        assert!(check_named("pve-qm-boot", "order=scsi0;efidisk0").is_err());
    }
}
