//! Test PKI and machine configs: an Ed25519 OS CA and a P-256 cluster CA generated with rcgen,
//! keys written with the PEM labels Talos uses, and a control-plane config for a loopback node.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use homelab_apid::{ApidClient, ClientCredentials};
use homelab_sim::pki::{Ca, KeyAlg, Leaf};
use homelab_sim::talos::{ClusterRegistry, ConfigSchema, NodeOptions, NodeSim};

pub fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
}

pub fn schema() -> Arc<ConfigSchema> {
    match ConfigSchema::builtin(homelab_sim::talos::DEFAULT_TALOS_VERSION) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

pub struct Cluster {
    pub os_ca: Ca,
    pub k8s_ca: Ca,
    /// What the cluster's nodes share (a lab owns one; here the test does).
    pub clusters: Arc<ClusterRegistry>,
}

pub fn ok<T, E: std::fmt::Display>(r: Result<T, E>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: {e}"),
    }
}

impl Cluster {
    pub fn new() -> Self {
        Self {
            os_ca: ok(Ca::generate("talos", KeyAlg::Ed25519), "OS CA"),
            k8s_ca: ok(Ca::generate("kubernetes", KeyAlg::P256), "cluster CA"),
            clusters: Arc::default(),
        }
    }

    /// Starts a node of this cluster (see [`node`]).
    pub async fn node(
        &self,
        maintenance_ip: &str,
        tweak: impl FnOnce(&mut NodeOptions),
    ) -> NodeSim {
        let clusters = self.clusters.clone();
        node(maintenance_ip, |o| {
            o.clusters = clusters;
            tweak(o);
        })
        .await
    }

    /// A control-plane machine config with a static LinkConfig address.
    pub fn config(&self, hostname: &str, static_ip: IpAddr, extra_machine: &str) -> String {
        let os_key = self
            .os_ca
            .key_pem()
            .replace("PRIVATE KEY", "ED25519 PRIVATE KEY");
        format!(
            "version: v1alpha1
debug: false
persist: true
machine:
  type: controlplane
  token: abcdef.0123456789abcdef
  ca:
    crt: {os_crt}
    key: {os_key}
  certSANs: []
  kubelet:
    image: ghcr.io/siderolabs/kubelet:v1.35.0
  network: {{}}
  install:
    disk: /dev/sda
    image: factory.talos.dev/metal-installer-secureboot/376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba:v1.12.4
    wipe: false
{extra_machine}cluster:
  id: 0123456789abcdef0123456789abcdef0123456789a=
  secret: 0123456789abcdef0123456789abcdef0123456789a=
  controlPlane:
    endpoint: https://{static_ip}:6443
  clusterName: homelab
  network:
    dnsDomain: cluster.local
    podSubnets:
      - 10.244.0.0/16
    serviceSubnets:
      - 10.96.0.0/12
  token: abcdef.0123456789abcdef
  secretboxEncryptionSecret: 0123456789abcdef0123456789abcdef0123456789a=
  ca:
    crt: {k8s_crt}
    key: {k8s_key}
---
apiVersion: v1alpha1
kind: HostnameConfig
hostname: {hostname}
---
apiVersion: v1alpha1
kind: LinkConfig
name: eth0
addresses:
  - address: {static_ip}/8
routes:
  - gateway: 127.0.0.1
",
            os_crt = b64(self.os_ca.cert_pem()),
            os_key = b64(&os_key),
            k8s_crt = b64(self.k8s_ca.cert_pem()),
            k8s_key = b64(&self.k8s_ca.key_pem()),
        )
    }

    /// A worker config of the same cluster: no CA keys, as Talos generates it.
    pub fn worker_config(&self, hostname: &str, static_ip: IpAddr, endpoint_ip: IpAddr) -> String {
        let cp = self.config(hostname, static_ip, "");
        let os_key = format!(
            "    key: {}\n",
            b64(&self
                .os_ca
                .key_pem()
                .replace("PRIVATE KEY", "ED25519 PRIVATE KEY"))
        );
        let k8s_key = format!("    key: {}\n", b64(&self.k8s_ca.key_pem()));
        cp.replace("type: controlplane", "type: worker")
            .replace(&os_key, "")
            .replace(&k8s_key, "")
            .replace(
                &format!("endpoint: https://{static_ip}:6443"),
                &format!("endpoint: https://{endpoint_ip}:6443"),
            )
    }

    /// talosconfig-style credentials with the given roles, key labelled as Talos labels it.
    pub fn creds(&self, roles: &[&str]) -> ClientCredentials {
        creds_from(&self.os_ca, roles)
    }
}

pub fn creds_from(ca: &Ca, roles: &[&str]) -> ClientCredentials {
    let leaf = Leaf {
        organizations: roles.iter().map(|r| (*r).to_owned()).collect(),
        client: true,
        days: 365,
        ..Leaf::default()
    };
    let issued = ok(ca.issue(&leaf, KeyAlg::Ed25519), "client certificate");
    let key = issued.key_pem.replace("PRIVATE KEY", "ED25519 PRIVATE KEY");
    ok(
        ClientCredentials::from_pem(
            ca.cert_pem().as_bytes(),
            issued.cert_pem.as_bytes(),
            key.as_bytes(),
        ),
        "credentials",
    )
}

pub fn ip(s: &str) -> IpAddr {
    ok(s.parse::<IpAddr>(), "ip")
}

/// Starts a node in maintenance mode on `maintenance_ip` with ephemeral ports everywhere.
pub async fn node(maintenance_ip: &str, tweak: impl FnOnce(&mut NodeOptions)) -> NodeSim {
    let mut opts = NodeOptions::new(SocketAddr::new(ip(maintenance_ip), 0));
    opts.apid_port = 0;
    opts.kube_port = Some(0);
    opts.reboot_delay = Duration::from_millis(20);
    opts.install_delay = Duration::from_millis(20);
    // Tests of other behaviour bootstrap at once; the preconditions have tests of their own.
    opts.cri_delay = Duration::ZERO;
    opts.time_sync = Some(Duration::ZERO);
    tweak(&mut opts);
    ok(NodeSim::start(opts, schema()).await, "node start")
}

pub const WAIT: Duration = Duration::from_secs(10);

/// Applies `config` in maintenance mode and returns the installed apid address.
pub async fn install(node: &NodeSim, config: &str) -> SocketAddr {
    apply_in_maintenance(node, config).await;
    match node.wait_installed(WAIT).await {
        Ok(addr) => addr,
        Err(phase) => panic!("node did not install: {phase:?}"),
    }
}

/// Applies `config` in maintenance mode; the node then installs (a worker's apid comes up only
/// once trustd answers it).
pub async fn apply_in_maintenance(node: &NodeSim, config: &str) {
    let Ok(maint) = node.wait_maintenance(WAIT).await else {
        panic!("node not in maintenance: {:?}", node.phase())
    };
    let mut client = ok(
        ApidClient::connect_maintenance(maint, node.maintenance_fingerprint()).await,
        "connect",
    );
    ok(
        client
            .apply_configuration(config.as_bytes(), homelab_apid::ApplyMode::Auto, false)
            .await,
        "apply",
    );
}
