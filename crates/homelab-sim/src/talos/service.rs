//! The simulated `machine.MachineService`: maintenance mode answers ApplyConfiguration only;
//! installed mode authorizes each call by the Talos role in the client certificate's
//! Organization and implements Version, Bootstrap (also recovering etcd from a snapshot), Kubeconfig,
//! ServiceList, EtcdMemberList, Reset and ApplyConfiguration — with Talos v1.12.4's preconditions and wire
//! shapes (`v1alpha1_server.go`): Bootstrap waits for CRI and time sync, EtcdMemberList blocks until its
//! deadline while etcd does not run, Kubeconfig is one message of a tar.gz whose tar is never closed, and
//! control-plane-only APIs answer Unimplemented on workers. The day-2 calls (Upgrade, EtcdSnapshot,
//! EtcdRecover, EtcdLeaveCluster, EtcdRemoveMemberByID, EtcdStatus) are answered by `day2`.

use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use tonic::codegen::tokio_stream::{self, Stream};
use tonic::{Request, Response, Status};

use homelab_apid::proto::common::{Data, Metadata};
use homelab_apid::proto::machine::{
    self, apply_configuration_request::Mode, machine_service_server::MachineService,
};

use super::config::{MachineType, NodeConfig};
use super::day2::{self, Call};
use super::node::{Inner, node_name};
use super::schema::ConfigSchema;
use crate::pki::{self, KeyAlg, Leaf};

const ADMIN: &[&str] = &["os:admin"];
pub(crate) const READER: &[&str] = &["os:admin", "os:operator", "os:reader"];
const ETCD_READER: &[&str] = &["os:admin", "os:operator", "os:reader", "os:etcd:backup"];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Serving {
    Maintenance,
    Installed,
}

/// The gRPC service bound to one listener generation of a node.
#[derive(Clone)]
pub(crate) struct ApidService {
    node: Arc<Inner>,
    generation: u64,
    serving: Serving,
}

impl ApidService {
    pub(crate) fn maintenance(node: Arc<Inner>, generation: u64) -> Self {
        Self {
            node,
            generation,
            serving: Serving::Maintenance,
        }
    }

    pub(crate) fn installed(node: Arc<Inner>, generation: u64) -> Self {
        Self {
            node,
            generation,
            serving: Serving::Installed,
        }
    }

    /// Connections opened before a reboot see the node go away.
    fn alive(&self) -> Result<(), Status> {
        if self.node.lock().generation == self.generation {
            Ok(())
        } else {
            Err(Status::unavailable(
                "connection closed: the node is rebooting",
            ))
        }
    }

    /// The node this listener serves.
    pub(crate) fn node(&self) -> &Arc<Inner> {
        &self.node
    }

    /// The Talos roles in the caller's client certificate (its Organizations).
    pub(crate) fn roles<T>(&self, req: &Request<T>) -> Vec<String> {
        req.peer_certs()
            .and_then(|c| c.first().map(|d| pki::organizations(d)))
            .unwrap_or_default()
    }

    /// Installed-mode gate: the caller's certificate must carry one of `allowed` roles.
    pub(crate) fn authorize<T>(
        &self,
        method: &str,
        req: &Request<T>,
        allowed: &[&str],
    ) -> Result<Option<Metadata>, Status> {
        self.alive()?;
        if self.serving == Serving::Maintenance {
            return Err(Status::unimplemented(format!(
                "method {method} not implemented"
            )));
        }
        let roles = self.roles(req);
        if !roles.iter().any(|r| allowed.contains(&r.as_str())) {
            return Err(Status::permission_denied("not authorized"));
        }
        self.target(req)
    }

    /// Honours the `node` metadata: this node's own names are served locally (with the
    /// hostname set, as apid's proxy does); any other target is unreachable from the simulator.
    fn target<T>(&self, req: &Request<T>) -> Result<Option<Metadata>, Status> {
        let Some(node) = req.metadata().get("node").and_then(|v| v.to_str().ok()) else {
            return Ok(None);
        };
        let st = self.node.lock();
        let mut names = vec![self.node.opts.maintenance_addr.ip().to_string()];
        if let Some(inst) = st.installed.as_ref() {
            names.push(inst.addr.ip().to_string());
            names.extend(inst.config.hostname.iter().cloned());
        }
        if names.iter().any(|n| n == node) {
            Ok(Some(Metadata {
                hostname: node.to_owned(),
                ..Metadata::default()
            }))
        } else {
            Err(Status::unavailable(format!(
                "connection error: desc = \"transport: Error while dialing: dial tcp {node}:50000: connect: connection refused\""
            )))
        }
    }

    fn call(&self, metadata: Option<Metadata>) -> Call<'_> {
        Call {
            node: &self.node,
            metadata,
        }
    }

    /// Validates a config as the Talos the node runs does: against that version's schema (exact when
    /// embedded, else the newest patch of its minor, else the node's own), then the Kubernetes images
    /// against the versions that Talos runs.
    fn validate(&self, data: &[u8]) -> Result<NodeConfig, Status> {
        let running = self.node.lock().talos_version.clone();
        let schema =
            ConfigSchema::for_running(&running).unwrap_or_else(|| self.node.schema.clone());
        let docs = schema.validate(data).map_err(Status::invalid_argument)?;
        let config = NodeConfig::from_documents(&docs, data).map_err(Status::invalid_argument)?;
        super::kubernetes::check_versions(&config.images, config.machine_type, &running)
            .map_err(Status::invalid_argument)?;
        Ok(config)
    }
}

type DataStream = Pin<Box<dyn Stream<Item = Result<Data, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl MachineService for ApidService {
    async fn apply_configuration(
        &self,
        request: Request<machine::ApplyConfigurationRequest>,
    ) -> Result<Response<machine::ApplyConfigurationResponse>, Status> {
        self.alive()?;
        let metadata = match self.serving {
            // Maintenance mode: no role check (peers are os:reader, ApplyConfiguration is exempt).
            Serving::Maintenance => self.target(&request)?,
            Serving::Installed => self.authorize("ApplyConfiguration", &request, ADMIN)?,
        };
        let req = request.into_inner();
        let mode = Mode::try_from(req.mode)
            .map_err(|_| Status::invalid_argument(format!("unknown mode {}", req.mode)))?;
        if self.serving == Serving::Maintenance
            && !matches!(mode, Mode::Reboot | Mode::Auto | Mode::Try)
        {
            return Err(Status::unimplemented(format!(
                "apply configuration in {} mode is not supported in maintenance mode",
                mode.as_str_name()
            )));
        }
        let config = self.validate(&req.data)?;
        let (used, details) = match (self.serving, mode) {
            (_, _) if req.dry_run => (
                mode,
                "Dry run summary:\nApplied configuration validated".to_owned(),
            ),
            (Serving::Maintenance, _) => {
                self.node.install(config);
                (
                    Mode::Reboot,
                    "Applied configuration with a reboot".to_owned(),
                )
            }
            (Serving::Installed, Mode::Staged) => {
                self.node.lock().staged = Some(req.data.clone());
                (
                    Mode::Staged,
                    "Staged configuration to be applied after a reboot".to_owned(),
                )
            }
            (Serving::Installed, Mode::Reboot) => {
                self.node.install(config);
                (
                    Mode::Reboot,
                    "Applied configuration with a reboot".to_owned(),
                )
            }
            (Serving::Installed, _) => {
                let mut st = self.node.lock();
                if let Some(inst) = st.installed.as_mut() {
                    inst.config = config;
                }
                drop(st);
                self.node.changed();
                self.node.reconfigured();
                (
                    if mode == Mode::Try {
                        Mode::Try
                    } else {
                        Mode::NoReboot
                    },
                    "Applied configuration without a reboot".to_owned(),
                )
            }
        };
        Ok(Response::new(machine::ApplyConfigurationResponse {
            messages: vec![machine::ApplyConfiguration {
                metadata,
                warnings: Vec::new(),
                mode: used as i32,
                mode_details: details,
            }],
        }))
    }

    async fn bootstrap(
        &self,
        request: Request<machine::BootstrapRequest>,
    ) -> Result<Response<machine::BootstrapResponse>, Status> {
        let metadata = self.authorize("Bootstrap", &request, ADMIN)?;
        let req = request.into_inner();
        {
            let mut st = self.node.lock();
            if st.bootstrap_refusals < self.node.opts.bootstrap_not_ready {
                st.bootstrap_refusals += 1;
                return Err(Status::failed_precondition(
                    "bootstrap is not available yet",
                ));
            }
            // The reset sequence stopped CRI: IsBootstrapAllowed is false until the node booted again.
            if st.resetting {
                return Err(Status::failed_precondition(
                    "bootstrap is not available yet",
                ));
            }
            let Some(inst) = st.installed.as_mut() else {
                return Err(Status::unavailable("the node is rebooting"));
            };
            // Talos checks, in this order: CRI up (IsBootstrapAllowed), a control plane, the
            // time synced (Talos waits up to 5 s for it; the simulator answers at once), then the
            // etcd data directory.
            let since_boot = inst.booted_at.map(|t| t.elapsed()).unwrap_or_default();
            if since_boot < self.node.opts.cri_delay {
                self.refused_precondition();
                return Err(Status::failed_precondition(
                    "bootstrap is not available yet",
                ));
            }
            if inst.config.machine_type != MachineType::ControlPlane {
                return Err(Status::failed_precondition(
                    "bootstrap can only be performed on a control plane node",
                ));
            }
            if self
                .node
                .opts
                .time_sync
                .is_none_or(|synced| since_boot < synced)
            {
                self.refused_precondition();
                return Err(Status::failed_precondition("time is not in sync yet"));
            }
            if inst.etcd_member {
                return Err(Status::already_exists("etcd data directory is not empty"));
            }
            if req.recover_etcd {
                // etcd starts as a one-member cluster from the uploaded snapshot's data.
                inst.etcd = Some(day2::take_recovery(
                    &mut inst.recovery,
                    req.recover_skip_hash_check,
                )?);
            }
            // A node still waiting to join starts a new etcd cluster: Talos does the same, and
            // it is a split brain (counted by the cluster registry).
            inst.bootstrapped = true;
            inst.etcd_member = true;
            self.node.opts.clusters.bootstrap(
                &inst.config.os_ca_pem,
                &node_name(inst),
                inst.addr.ip(),
            );
            st.bootstraps += 1;
        }
        self.node
            .start_kube(!req.recover_etcd)
            .await
            .map_err(|e| Status::internal(format!("starting the Kubernetes API: {e}")))?;
        Ok(Response::new(machine::BootstrapResponse {
            messages: vec![machine::Bootstrap { metadata }],
        }))
    }

    async fn etcd_member_list(
        &self,
        request: Request<machine::EtcdMemberListRequest>,
    ) -> Result<Response<machine::EtcdMemberListResponse>, Status> {
        let metadata = self.authorize("EtcdMemberList", &request, ETCD_READER)?;
        let deadline = grpc_timeout(&request);
        let ca = {
            let st = self.node.lock();
            let Some(inst) = st.installed.as_ref() else {
                return Err(Status::unavailable("the node is rebooting"));
            };
            control_plane_only(inst, "member list")?;
            inst.config.os_ca_pem.clone()
        };
        // Talos asks etcd through the control planes' addresses with WithRequireLeader: before
        // etcd runs (no bootstrap yet) the call waits for a leader until its context ends.
        if !self.node.opts.clusters.has_quorum(&ca) {
            self.node
                .counters
                .etcd_list_blocked
                .fetch_add(1, Ordering::Relaxed);
            let wait = deadline.unwrap_or(self.node.opts.etcd_wait_cap);
            tokio::time::sleep(wait.min(self.node.opts.etcd_wait_cap)).await;
            return Err(Status::deadline_exceeded("context deadline exceeded"));
        }
        let members = self
            .node
            .opts
            .clusters
            .member_list(&ca)
            .into_iter()
            .map(|m| machine::EtcdMember {
                id: m.id,
                hostname: m.name,
                peer_urls: vec![format!("https://{}:2380", m.ip)],
                client_urls: if m.learner {
                    Vec::new()
                } else {
                    vec![format!("https://{}:2379", m.ip)]
                },
                is_learner: m.learner,
            })
            .collect::<Vec<_>>();
        Ok(Response::new(machine::EtcdMemberListResponse {
            messages: vec![machine::EtcdMembers {
                metadata,
                legacy_members: members.iter().map(|m| m.hostname.clone()).collect(),
                members,
            }],
        }))
    }

    type KubeconfigStream = DataStream;
    type EtcdSnapshotStream = DataStream;
    type ReadStream = DataStream;

    async fn upgrade(
        &self,
        request: Request<machine::UpgradeRequest>,
    ) -> Result<Response<machine::UpgradeResponse>, Status> {
        let metadata = self.authorize("Upgrade", &request, ADMIN)?;
        self.call(metadata).upgrade(request.into_inner())
    }

    async fn etcd_snapshot(
        &self,
        request: Request<machine::EtcdSnapshotRequest>,
    ) -> Result<Response<Self::EtcdSnapshotStream>, Status> {
        let metadata = self.authorize("EtcdSnapshot", &request, ETCD_READER)?;
        let chunks = self.call(metadata).snapshot()?;
        Ok(Response::new(day2::stream(chunks)))
    }

    async fn etcd_recover(
        &self,
        request: Request<tonic::Streaming<Data>>,
    ) -> Result<Response<machine::EtcdRecoverResponse>, Status> {
        let metadata = self.authorize("EtcdRecover", &request, ADMIN)?;
        self.call(metadata).recover(request.into_inner()).await
    }

    async fn etcd_leave_cluster(
        &self,
        request: Request<machine::EtcdLeaveClusterRequest>,
    ) -> Result<Response<machine::EtcdLeaveClusterResponse>, Status> {
        let metadata = self.authorize("EtcdLeaveCluster", &request, ADMIN)?;
        self.call(metadata).leave_cluster()
    }

    async fn etcd_remove_member_by_id(
        &self,
        request: Request<machine::EtcdRemoveMemberByIdRequest>,
    ) -> Result<Response<machine::EtcdRemoveMemberByIdResponse>, Status> {
        let metadata = self.authorize("EtcdRemoveMemberByID", &request, ADMIN)?;
        self.call(metadata)
            .remove_member(request.into_inner().member_id)
    }

    async fn etcd_status(
        &self,
        request: Request<()>,
    ) -> Result<Response<machine::EtcdStatusResponse>, Status> {
        let metadata = self.authorize("EtcdStatus", &request, ETCD_READER)?;
        self.call(metadata).status()
    }

    /// Talos streams a regular file of the node's filesystem (`os:admin` only); the one file modelled is
    /// the kernel's boot ID. A missing path is NotFound with `os.Stat`'s message, a directory is refused.
    async fn read(
        &self,
        request: Request<machine::ReadRequest>,
    ) -> Result<Response<Self::ReadStream>, Status> {
        let metadata = self.authorize("Read", &request, ADMIN)?;
        let path = request.into_inner().path;
        let bytes = match path.trim_end_matches('/') {
            homelab_apid::BOOT_ID_PATH => format!("{}\n", self.node.lock().boot_id),
            "" | "/proc" | "/proc/sys" | "/proc/sys/kernel" | "/proc/sys/kernel/random" => {
                return Err(Status::unknown("path must be a regular file"));
            }
            _ => {
                return Err(Status::not_found(format!(
                    "stat {path}: no such file or directory"
                )));
            }
        };
        let message = Ok(Data {
            metadata,
            bytes: bytes.into_bytes(),
        });
        Ok(Response::new(Box::pin(tokio_stream::iter([message]))))
    }

    async fn kubeconfig(
        &self,
        request: Request<()>,
    ) -> Result<Response<Self::KubeconfigStream>, Status> {
        let metadata = self.authorize("Kubeconfig", &request, ADMIN)?;
        let archive = {
            let st = self.node.lock();
            let Some(inst) = st.installed.as_ref() else {
                return Err(Status::unavailable("the node is rebooting"));
            };
            control_plane_only(inst, "kubeconfig")?;
            let Some(ca) = inst.config.cluster_ca.as_ref() else {
                return Err(Status::internal("the control plane has no cluster CA key"));
            };
            // Talos names the cluster endpoint; an API on an ephemeral port (tests) is named as is.
            let server = match (self.node.opts.kube_port, inst.kube.as_ref()) {
                (Some(_), Some(kube)) => format!("https://{}", kube.addr()),
                _ => inst.config.endpoint.clone(),
            };
            let admin = ca
                .issue(
                    &Leaf {
                        common_name: Some("admin".into()),
                        organizations: vec!["system:masters".into()],
                        client: true,
                        days: 365,
                        ..Leaf::default()
                    },
                    KeyAlg::P256,
                )
                .map_err(|e| Status::internal(e.to_string()))?;
            let text = render_kubeconfig(
                &inst.config.cluster_name,
                &server,
                &inst.config.cluster_ca_pem,
                &admin,
            );
            tar_gz_kubeconfig(text.as_bytes())
                .map_err(|e| Status::internal(format!("packing kubeconfig: {e}")))?
        };
        // One message holding the whole archive, as Talos sends it.
        let message = Ok(Data {
            metadata,
            bytes: archive,
        });
        Ok(Response::new(Box::pin(tokio_stream::iter([message]))))
    }

    async fn reset(
        &self,
        request: Request<machine::ResetRequest>,
    ) -> Result<Response<machine::ResetResponse>, Status> {
        let metadata = self.authorize("Reset", &request, ADMIN)?;
        let req = request.into_inner();
        reset_input(&req)?;
        // Wiping only EPHEMERAL keeps the config (STATE): etcd's data is gone, the node stays installed.
        let keep_state = !req.system_partitions_to_wipe.is_empty()
            && !req
                .system_partitions_to_wipe
                .iter()
                .any(|p| p.label == "STATE");
        self.node.reset(req.graceful, req.reboot, keep_state);
        Ok(Response::new(machine::ResetResponse {
            messages: vec![machine::Reset {
                metadata,
                actor_id: "homelab-sim".into(),
            }],
        }))
    }

    async fn service_list(
        &self,
        request: Request<()>,
    ) -> Result<Response<machine::ServiceListResponse>, Status> {
        let metadata = self.authorize("ServiceList", &request, READER)?;
        let st = self.node.lock();
        let Some(inst) = st.installed.as_ref() else {
            return Err(Status::unavailable("the node is rebooting"));
        };
        let control_plane = inst.config.machine_type == MachineType::ControlPlane;
        let since_boot = inst.booted_at.map(|t| t.elapsed()).unwrap_or_default();
        let cri_up = since_boot >= self.node.opts.cri_delay;
        // What a v1.12 node runs: the boot services (udevd, syslogd, auditd, dashboard,
        // containerd, apid, machined), CRI and kubelet, trustd and etcd on control planes only,
        // and one `ext-<name>` per system extension with a service.
        let mut services = vec![
            service("apid", "Running", Some(true)),
            service("auditd", "Running", None),
            service("containerd", "Running", Some(true)),
            if cri_up {
                service("cri", "Running", Some(true))
            } else {
                service("cri", "Preparing", None)
            },
            service("dashboard", "Running", None),
            service("kubelet", "Running", Some(true)),
            service("machined", "Running", None),
            service("syslogd", "Running", None),
            service("udevd", "Running", None),
        ];
        services.extend(
            self.node
                .opts
                .extensions
                .iter()
                .map(|e| service(&format!("ext-{e}"), "Running", None)),
        );
        if control_plane {
            services.push(service("trustd", "Running", Some(true)));
            services.push(if inst.etcd_member {
                service("etcd", "Running", Some(true))
            } else {
                service("etcd", "Preparing", None)
            });
        }
        services.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(Response::new(machine::ServiceListResponse {
            messages: vec![machine::ServiceList { metadata, services }],
        }))
    }

    async fn version(
        &self,
        request: Request<()>,
    ) -> Result<Response<machine::VersionResponse>, Status> {
        self.alive()?;
        // The maintenance server serves Version to os:admin only (`assertAdminRole`), i.e. to
        // SideroLink peers; a plain insecure client is os:reader and gets Unimplemented.
        if self.serving == Serving::Maintenance {
            return Err(Status::unimplemented(
                "API is not implemented in maintenance mode",
            ));
        }
        let metadata = self.authorize("Version", &request, READER)?;
        Ok(Response::new(machine::VersionResponse {
            messages: vec![machine::Version {
                metadata,
                version: Some(machine::VersionInfo {
                    tag: self.node.lock().talos_version.clone(),
                    sha: "homelab-sim".into(),
                    built: String::new(),
                    go_version: String::new(),
                    os: "linux".into(),
                    arch: "amd64".into(),
                }),
                // Proxmox VMs boot the nocloud image (cloud mode), not metal.
                platform: Some(machine::PlatformInfo {
                    name: "nocloud".into(),
                    mode: "cloud".into(),
                }),
                features: Some(machine::FeaturesInfo { rbac: true }),
            }],
        }))
    }
}

impl ApidService {
    fn refused_precondition(&self) {
        self.node
            .counters
            .bootstrap_preconditions
            .fetch_add(1, Ordering::Relaxed);
    }
}

/// Talos' `checkControlplane`: control-plane-only APIs answer Unimplemented on workers.
/// The system volumes a Reset may name (Talos looks each label up as a VolumeStatus).
const SYSTEM_VOLUMES: [&str; 6] = ["EFI", "BIOS", "BOOT", "META", "STATE", "EPHEMERAL"];

/// What Talos' Reset handler refuses before it starts the reset sequence (`v1alpha1_server.go`):
/// wipe modes that contradict the lists given, user disks the machine does not have (the
/// simulated VM has none), and system volumes that do not exist.
fn reset_input(req: &machine::ResetRequest) -> Result<(), Status> {
    use machine::reset_request::WipeMode;
    let mode = WipeMode::try_from(req.mode).unwrap_or(WipeMode::All);
    if let Some(disk) = req.user_disks_to_wipe.first() {
        if mode == WipeMode::SystemDisk {
            return Err(Status::unknown(
                "reset failed: invalid input, wipe mode SYSTEM_DISK doesn't support UserDisksToWipe parameter",
            ));
        }
        return Err(Status::unknown(format!(
            "reset user disk failed: device {disk} wasn't found"
        )));
    }
    if !req.system_partitions_to_wipe.is_empty() && mode == WipeMode::UserDisks {
        return Err(Status::unknown(
            "reset failed: invalid input, wipe mode USER_DISKS doesn't support SystemPartitionsToWipe parameter",
        ));
    }
    if let Some(p) = req
        .system_partitions_to_wipe
        .iter()
        .find(|p| !SYSTEM_VOLUMES.contains(&p.label.as_str()))
    {
        // Talos' suffix is COSI's NotFound error; the simulator words it plainly.
        return Err(Status::unknown(format!(
            "failed to get volume status with label {:?}: no such volume",
            p.label
        )));
    }
    Ok(())
}

pub(crate) fn control_plane_only(inst: &super::node::Installed, api: &str) -> Result<(), Status> {
    if inst.config.machine_type == MachineType::ControlPlane {
        Ok(())
    } else {
        Err(Status::unimplemented(format!(
            "{api} is only available on control plane nodes"
        )))
    }
}

/// The caller's deadline from the `grpc-timeout` header (`<digits><unit>`, units H M S m u n).
fn grpc_timeout<T>(req: &Request<T>) -> Option<Duration> {
    let raw = req.metadata().get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = raw.split_at(raw.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

fn service(id: &str, state: &str, healthy: Option<bool>) -> machine::ServiceInfo {
    machine::ServiceInfo {
        id: id.into(),
        state: state.into(),
        events: None,
        health: Some(machine::ServiceHealth {
            unknown: healthy.is_none(),
            healthy: healthy.unwrap_or(false),
            last_message: String::new(),
            last_change: None,
        }),
    }
}

/// The admin kubeconfig, shaped like the one Talos generates (context `admin@<cluster>`).
fn render_kubeconfig(cluster: &str, server: &str, ca_pem: &str, admin: &pki::Issued) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n    - name: {cluster}\n      cluster:\n        server: {server}\n        certificate-authority-data: {ca}\nusers:\n    - name: admin@{cluster}\n      user:\n        client-certificate-data: {crt}\n        client-key-data: {key}\ncontexts:\n    - context:\n        cluster: {cluster}\n        namespace: default\n        user: admin@{cluster}\n      name: admin@{cluster}\ncurrent-context: admin@{cluster}\n",
        ca = b64(ca_pem),
        crt = b64(&admin.cert_pem),
        key = b64(&admin.key_pem),
    )
}

/// Packs the kubeconfig as the Kubeconfig RPC does (`v1alpha1_server.go`): a tar header and the
/// file's bytes, gzip'ed; Talos closes the gzip writer but never the tar writer, so the archive
/// has neither the padding of the last block nor the two zero blocks that end a tar.
pub(crate) fn tar_gz_kubeconfig(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut header = tar::Header::new_ustar();
    header.set_path("kubeconfig")?;
    header.set_size(body.len() as u64);
    header.set_mode(0o600);
    header.set_entry_type(tar::EntryType::Regular);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    header.set_mtime(now);
    header.set_cksum();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(header.as_bytes())?;
    gz.write_all(body)?;
    gz.finish()
}
