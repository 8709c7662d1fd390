//! The generated documents of a node's config, field for field as `talosctl gen config` (contract 1.12)
//! writes them, plus the 1.12 network/volume documents built from the node inputs.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::{ConfigError, Encryption, LINK_ALIAS, MachineConfigInput, Role};
use crate::pki::CertAndKey;
use crate::secrets::SecretsBundle;

pub(super) fn generate(
    input: &MachineConfigInput,
    bundle: &SecretsBundle,
) -> Result<Vec<Value>, ConfigError> {
    let mut docs = vec![v1alpha1(input, bundle)?, hostname(input)];
    docs.push(json!({
        "apiVersion": "v1alpha1",
        "kind": "LinkAliasConfig",
        "name": LINK_ALIAS,
        "selector": {"match": format!("mac(link.permanent_addr) == \"{}\"", input.node.mac.to_ascii_lowercase())},
    }));
    docs.push(json!({
        "apiVersion": "v1alpha1",
        "kind": "LinkConfig",
        "name": LINK_ALIAS,
        "up": true,
        "addresses": [{"address": format!("{}/{}", input.node.address, input.node.prefix)}],
        "routes": [{"gateway": input.node.gateway.to_string()}],
    }));
    if let (Some(vip), Role::ControlPlane) = (input.cluster.vip, input.node.role) {
        docs.push(json!({
            "apiVersion": "v1alpha1",
            "kind": "Layer2VIPConfig",
            "name": vip.to_string(),
            "link": LINK_ALIAS,
        }));
    }
    if !input.node.nameservers.is_empty() {
        let nameservers: Vec<Value> = input
            .node
            .nameservers
            .iter()
            .map(|ip| json!({"address": ip.to_string()}))
            .collect();
        docs.push(json!({
            "apiVersion": "v1alpha1",
            "kind": "ResolverConfig",
            "nameservers": nameservers,
        }));
    }
    if input.node.encryption == Encryption::Tpm {
        docs.push(volume("STATE", false));
        docs.push(volume("EPHEMERAL", true));
    }
    Ok(docs)
}

fn hostname(input: &MachineConfigInput) -> Value {
    json!({
        "apiVersion": "v1alpha1",
        "kind": "HostnameConfig",
        "hostname": input.node.name,
    })
}

/// LUKS2 with one key in slot 0, random and sealed by the TPM; enrolment refuses a machine without SecureBoot.
/// EPHEMERAL is locked to STATE (its key only unseals together with this STATE).
fn volume(name: &str, lock_to_state: bool) -> Value {
    let mut key = Map::new();
    key.insert("slot".into(), json!(0));
    key.insert("tpm".into(), json!({"checkSecurebootStatusOnEnroll": true}));
    if lock_to_state {
        key.insert("lockToState".into(), json!(true));
    }
    json!({
        "apiVersion": "v1alpha1",
        "kind": "VolumeConfig",
        "name": name,
        "encryption": {"provider": "luks2", "keys": [Value::Object(key)]},
    })
}

fn b64(text: &str) -> String {
    STANDARD.encode(text.as_bytes())
}

fn pair(p: &CertAndKey) -> Value {
    json!({"crt": b64(&p.crt), "key": b64(p.key.expose())})
}

fn crt_only(p: &CertAndKey) -> Value {
    json!({"crt": b64(&p.crt)})
}

fn v1alpha1(input: &MachineConfigInput, bundle: &SecretsBundle) -> Result<Value, ConfigError> {
    let k8s = format!(
        "v{}",
        input.cluster.kubernetes_version.trim_start_matches('v')
    );
    let cp = input.node.role == Role::ControlPlane;
    let certs = &bundle.certs;

    let mut machine = Map::new();
    machine.insert("type".into(), json!(input.node.role.as_str()));
    machine.insert("token".into(), json!(bundle.trustdinfo.token.expose()));
    machine.insert(
        "ca".into(),
        if cp {
            pair(&certs.os)
        } else {
            crt_only(&certs.os)
        },
    );
    machine.insert("certSANs".into(), json!([]));
    machine.insert(
        "kubelet".into(),
        json!({
            "image": format!("ghcr.io/siderolabs/kubelet:{k8s}"),
            "defaultRuntimeSeccompProfileEnabled": true,
            "disableManifestsDirectory": true,
        }),
    );
    machine.insert("network".into(), json!({}));
    machine.insert(
        "install".into(),
        json!({
            "disk": input.node.install_disk,
            "image": input.installer_image,
            "wipe": false,
            "grubUseUKICmdline": true,
        }),
    );
    machine.insert(
        "features".into(),
        json!({
            "diskQuotaSupport": true,
            "kubePrism": {"enabled": true, "port": 7445},
            "hostDNS": {"enabled": true, "forwardKubeDNSToHost": true},
        }),
    );
    if cp {
        machine.insert(
            "nodeLabels".into(),
            json!({"node.kubernetes.io/exclude-from-external-load-balancers": ""}),
        );
    }

    let mut cluster = Map::new();
    cluster.insert("id".into(), json!(bundle.cluster.id.expose()));
    cluster.insert("secret".into(), json!(bundle.cluster.secret.expose()));
    cluster.insert(
        "controlPlane".into(),
        json!({"endpoint": input.cluster.endpoint}),
    );
    cluster.insert("clusterName".into(), json!(input.cluster.name));
    cluster.insert(
        "network".into(),
        json!({
            "dnsDomain": input.cluster.dns_domain,
            "podSubnets": input.cluster.pod_subnets,
            "serviceSubnets": input.cluster.service_subnets,
        }),
    );
    cluster.insert(
        "token".into(),
        json!(bundle.secrets.bootstraptoken.expose()),
    );
    if cp {
        match (
            &bundle.secrets.secretboxencryptionsecret,
            &bundle.secrets.aescbcencryptionsecret,
        ) {
            (Some(s), _) => {
                cluster.insert("secretboxEncryptionSecret".into(), json!(s.expose()));
            }
            (None, Some(s)) => {
                cluster.insert("aescbcEncryptionSecret".into(), json!(s.expose()));
            }
            (None, None) => {
                return Err(ConfigError::Input {
                    field: "secrets.secretboxencryptionsecret",
                    reason: "the secrets bundle has no encryption secret".into(),
                });
            }
        }
        cluster.insert("ca".into(), pair(&certs.k8s));
        cluster.insert("aggregatorCA".into(), pair(&certs.k8saggregator));
        cluster.insert(
            "serviceAccount".into(),
            json!({"key": b64(certs.k8sserviceaccount.key.expose())}),
        );
        cluster.insert(
            "apiServer".into(),
            json!({
                "image": format!("registry.k8s.io/kube-apiserver:{k8s}"),
                "admissionControl": [{
                    "name": "PodSecurity",
                    "configuration": {
                        "apiVersion": "pod-security.admission.config.k8s.io/v1alpha1",
                        "defaults": {
                            "audit": "restricted",
                            "audit-version": "latest",
                            "enforce": "baseline",
                            "enforce-version": "latest",
                            "warn": "restricted",
                            "warn-version": "latest",
                        },
                        "exemptions": {"namespaces": ["kube-system"], "runtimeClasses": [], "usernames": []},
                        "kind": "PodSecurityConfiguration",
                    },
                }],
                "auditPolicy": {
                    "apiVersion": "audit.k8s.io/v1",
                    "kind": "Policy",
                    "rules": [{"level": "Metadata"}],
                },
            }),
        );
        cluster.insert(
            "controllerManager".into(),
            json!({"image": format!("registry.k8s.io/kube-controller-manager:{k8s}")}),
        );
        cluster.insert(
            "proxy".into(),
            json!({"image": format!("registry.k8s.io/kube-proxy:{k8s}")}),
        );
        cluster.insert(
            "scheduler".into(),
            json!({"image": format!("registry.k8s.io/kube-scheduler:{k8s}")}),
        );
    } else {
        cluster.insert("ca".into(), crt_only(&certs.k8s));
    }
    cluster.insert(
        "discovery".into(),
        json!({"enabled": true, "registries": {"kubernetes": {"disabled": true}, "service": {}}}),
    );
    if cp {
        cluster.insert("etcd".into(), json!({"ca": pair(&certs.etcd)}));
        cluster.insert("extraManifests".into(), json!([]));
        cluster.insert("inlineManifests".into(), json!([]));
        if input.cluster.allow_scheduling_on_control_planes {
            cluster.insert("allowSchedulingOnControlPlanes".into(), json!(true));
        }
    }

    Ok(json!({
        "version": "v1alpha1",
        "debug": false,
        "machine": Value::Object(machine),
        "cluster": Value::Object(cluster),
    }))
}
