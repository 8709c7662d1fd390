//! Reads what the simulated node needs from an applied, schema-valid machine config: machine
//! type, hostname, static address (LinkConfig or legacy v1alpha1 network), the OS and cluster
//! CAs, the control-plane endpoint and cluster name, whether discovery is on and control planes
//! take workloads, and the LinkAliasConfig the static address depends on. Enforces the Talos
//! semantic rules it relies on.

use std::net::IpAddr;

use serde_json::Value;

use super::schema::Documents;
use crate::pki::{self, Ca, PkiError};

/// The machine role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MachineType {
    /// runs etcd and the Kubernetes control plane
    ControlPlane,
    /// runs workloads only
    Worker,
}

/// The parts of an applied config the simulator acts on.
#[derive(Debug)]
pub struct NodeConfig {
    /// machine role
    pub machine_type: MachineType,
    /// static hostname (HostnameConfig), if any
    pub hostname: Option<String>,
    /// first static address of a LinkConfig (or legacy interface), if any
    pub static_ip: Option<IpAddr>,
    /// extra SANs for the apid certificate
    pub cert_sans: Vec<String>,
    /// the shared VIP of a Layer2VIPConfig (control planes take part in its election)
    pub vip: Option<IpAddr>,
    /// the OS (Talos API) CA certificate PEM
    pub os_ca_pem: String,
    /// the OS CA with its key (control planes only; workers get certificates via trustd)
    pub os_ca: Option<Ca>,
    /// the Kubernetes CA (control planes only carry its key)
    pub cluster_ca: Option<Ca>,
    /// the Kubernetes CA certificate PEM
    pub cluster_ca_pem: String,
    /// `cluster.controlPlane.endpoint`
    pub endpoint: String,
    /// `cluster.clusterName`
    pub cluster_name: String,
    /// the kubelet's version: the tag of `machine.kubelet.image`
    pub kubelet_version: Option<String>,
    /// kube-apiserver's version: the tag of `cluster.apiServer.image` (control planes)
    pub apiserver_version: Option<String>,
    /// etcd's version: the tag of `cluster.etcd.image`, when the config names one
    pub etcd_version: Option<String>,
    /// the Kubernetes and installer images the config names
    pub images: super::kubernetes::ConfigImages,
    /// the raw applied config
    pub raw: Vec<u8>,
    /// `cluster.discovery.enabled` with the discovery service registry not disabled
    pub discovery: bool,
    /// `cluster.allowSchedulingOnControlPlanes`: a control plane's Node is then not tainted
    pub allow_scheduling_on_control_planes: bool,
    /// the link the static address is configured on (LinkConfig `name`)
    pub static_link: Option<String>,
    /// the first LinkAliasConfig, if any
    pub link_alias: Option<LinkAlias>,
}

/// A `LinkAliasConfig`: a name for the link its CEL selector matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkAlias {
    /// the alias (what LinkConfig names)
    pub name: String,
    /// `selector.match`, a CEL expression
    pub selector: String,
}

impl LinkAlias {
    /// Whether the selector matches a link with this MAC. Only the form Talos documents for a
    /// fixed NIC is understood: `mac(link.permanent_addr) == "bc:24:11:…"` (or `hardware_addr`);
    /// any other expression matches every link (the simulator does not evaluate CEL).
    pub fn matches_mac(&self, mac: &str) -> bool {
        let Some((lhs, rhs)) = self.selector.split_once("==") else {
            return true;
        };
        if !(lhs.contains("permanent_addr") || lhs.contains("hardware_addr")) {
            return true;
        }
        let want = rhs.trim().trim_matches('"').trim_matches('\'');
        want.eq_ignore_ascii_case(mac.trim())
    }
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn field_error(e: PkiError) -> String {
    format!("1 error occurred:\n\t* {e}\n")
}

impl NodeConfig {
    /// Extracts the node facts; errors read like Talos validation errors.
    pub fn from_documents(docs: &Documents, raw: &[u8]) -> Result<Self, String> {
        let v = &docs.v1alpha1;
        let machine_type = match str_at(v, "/machine/type") {
            Some("controlplane" | "init") => MachineType::ControlPlane,
            Some("worker") => MachineType::Worker,
            Some(other) => {
                return Err(format!(
                    "1 error occurred:\n\t* unknown machine type {other:?}\n"
                ));
            }
            None => return Err("1 error occurred:\n\t* machine.type is required\n".into()),
        };
        let endpoint = str_at(v, "/cluster/controlPlane/endpoint")
            .ok_or("1 error occurred:\n\t* cluster.controlPlane.endpoint is required\n")?
            .to_owned();
        if !endpoint.starts_with("https://") {
            return Err(format!(
                "1 error occurred:\n\t* invalid cluster.controlPlane.endpoint {endpoint:?}: must be an https URL\n"
            ));
        }
        let os_crt = str_at(v, "/machine/ca/crt")
            .ok_or("1 error occurred:\n\t* machine.ca.crt is required\n")?;
        let os_key = str_at(v, "/machine/ca/key");
        if machine_type == MachineType::ControlPlane && os_key.is_none() {
            return Err(
                "1 error occurred:\n\t* key is required for control plane machine.ca\n".into(),
            );
        }
        let os_ca_pem = pki::decode_b64_pem("machine.ca.crt", os_crt).map_err(field_error)?;
        let os_ca = match os_key {
            Some(key) => {
                let key_pem = pki::decode_b64_pem("machine.ca.key", key).map_err(field_error)?;
                Some(Ca::from_pem("machine.ca", &os_ca_pem, &key_pem).map_err(field_error)?)
            }
            None => None,
        };

        let cluster_crt = str_at(v, "/cluster/ca/crt")
            .ok_or("1 error occurred:\n\t* cluster.ca.crt is required\n")?;
        let cluster_ca_pem =
            pki::decode_b64_pem("cluster.ca.crt", cluster_crt).map_err(field_error)?;
        let cluster_ca = match str_at(v, "/cluster/ca/key") {
            Some(key) if machine_type == MachineType::ControlPlane => {
                let key_pem = pki::decode_b64_pem("cluster.ca.key", key).map_err(field_error)?;
                Some(Ca::from_pem("cluster.ca", &cluster_ca_pem, &key_pem).map_err(field_error)?)
            }
            Some(_) => {
                return Err(
                    "1 error occurred:\n\t* cluster.ca key is not allowed on worker nodes\n".into(),
                );
            }
            None if machine_type == MachineType::ControlPlane => {
                return Err(
                    "1 error occurred:\n\t* cluster.ca.key is required on control plane nodes\n"
                        .into(),
                );
            }
            None => None,
        };

        let mut hostname = None;
        let mut static_ip = None;
        let mut static_link = None;
        let mut link_alias = None;
        let mut vip = None;
        for doc in &docs.others {
            match doc.get("kind").and_then(Value::as_str) {
                Some("HostnameConfig") => {
                    let auto = str_at(doc, "/auto");
                    let name = str_at(doc, "/hostname");
                    if name.is_some() && auto.is_some_and(|a| a != "off") {
                        return Err("1 error occurred:\n\t* 'auto' and 'hostname' cannot be set at the same time\n".into());
                    }
                    hostname = name.map(str::to_owned);
                }
                Some("Layer2VIPConfig") => {
                    let name = str_at(doc, "/name").unwrap_or_default();
                    let ip = name.parse::<IpAddr>().map_err(|_| {
                        format!(
                            "1 error occurred:\n\t* Layer2VIPConfig: invalid IP address {name:?}\n"
                        )
                    })?;
                    vip = Some(ip);
                }
                Some("LinkConfig") if static_ip.is_none() => {
                    static_ip = first_address(doc.get("addresses"), "address");
                    static_link = str_at(doc, "/name").map(str::to_owned);
                }
                Some("LinkAliasConfig") if link_alias.is_none() => {
                    link_alias = Some(LinkAlias {
                        name: str_at(doc, "/name").unwrap_or_default().to_owned(),
                        selector: str_at(doc, "/selector/match")
                            .unwrap_or_default()
                            .to_owned(),
                    });
                }
                _ => {}
            }
        }
        if hostname.is_none() {
            hostname = str_at(v, "/machine/network/hostname").map(str::to_owned);
        }
        if static_ip.is_none() {
            let interfaces = v
                .pointer("/machine/network/interfaces")
                .and_then(Value::as_array);
            static_ip = interfaces
                .into_iter()
                .flatten()
                .find_map(|i| first_cidr(i.get("addresses")));
        }
        let cert_sans = v
            .pointer("/machine/certSANs")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            machine_type,
            hostname,
            static_ip,
            cert_sans,
            vip,
            os_ca_pem,
            os_ca,
            cluster_ca,
            cluster_ca_pem,
            cluster_name: str_at(v, "/cluster/clusterName")
                .unwrap_or("talos")
                .to_owned(),
            endpoint,
            kubelet_version: image_tag(str_at(v, "/machine/kubelet/image")),
            apiserver_version: image_tag(str_at(v, "/cluster/apiServer/image")),
            etcd_version: image_tag(str_at(v, "/cluster/etcd/image")),
            images: super::kubernetes::ConfigImages::from_v1alpha1(v),
            raw: raw.to_vec(),
            discovery: v
                .pointer("/cluster/discovery/enabled")
                .and_then(Value::as_bool)
                == Some(true)
                && v.pointer("/cluster/discovery/registries/service/disabled")
                    .and_then(Value::as_bool)
                    != Some(true),
            allow_scheduling_on_control_planes: v
                .pointer("/cluster/allowSchedulingOnControlPlanes")
                .and_then(Value::as_bool)
                == Some(true),
            static_link,
            link_alias,
        })
    }
}

/// The tag of an image reference (`registry.k8s.io/kube-apiserver:v1.35.0` → `v1.35.0`); none for a
/// digest-only or untagged reference.
pub(crate) fn image_tag(image: Option<&str>) -> Option<String> {
    let image = image?.split('@').next()?;
    let last = image.rsplit('/').next()?;
    let (_, tag) = last.rsplit_once(':')?;
    (!tag.is_empty()).then(|| tag.to_owned())
}

fn parse_cidr_ip(cidr: &str) -> Option<IpAddr> {
    cidr.split('/').next()?.parse().ok()
}

fn first_address(list: Option<&Value>, field: &str) -> Option<IpAddr> {
    list?
        .as_array()?
        .iter()
        .find_map(|a| a.get(field).and_then(Value::as_str).and_then(parse_cidr_ip))
}

fn first_cidr(list: Option<&Value>) -> Option<IpAddr> {
    list?
        .as_array()?
        .iter()
        .find_map(|a| a.as_str().and_then(parse_cidr_ip))
}

#[cfg(test)]
mod tests {
    use super::image_tag;

    #[test]
    fn image_tags_are_read_after_the_last_path_segment() {
        assert_eq!(
            image_tag(Some("registry.k8s.io/kube-apiserver:v1.35.0")),
            Some("v1.35.0".into())
        );
        assert_eq!(
            image_tag(Some("127.0.0.1:5000/kubelet:v1.36.1@sha256:ab")),
            Some("v1.36.1".into())
        );
        assert_eq!(image_tag(Some("127.0.0.1:5000/kubelet")), None);
        assert_eq!(image_tag(None), None);
    }
}
