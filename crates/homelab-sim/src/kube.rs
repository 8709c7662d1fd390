//! A minimal Kubernetes API server for tests and the demo: HTTPS with a server certificate from
//! the cluster CA, client certificates from that CA required, namespaces, Secrets, Nodes (Ready
//! once the Talos node is bootstrapped) and a generic object store with create, update,
//! merge-patch, server-side-apply-style patch and delete, plus `/version` and discovery so
//! `kubectl get` works. No watches, no admission, no garbage collection.

mod http;
mod store;
mod table;
mod types;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

pub use store::{ApiError, KubeTiming, Store, StoreSnapshot, StoredObject, Target};
pub use types::ResourceType;

use crate::pki::Issued;

/// How to start the Kubernetes simulator.
#[derive(Debug, Clone)]
pub struct KubeOptions {
    /// address to listen on (port 0 = ephemeral)
    pub bind: SocketAddr,
    /// server certificate (from the cluster CA)
    pub server_cert: Issued,
    /// PEM of the CA client certificates must chain to
    pub client_ca_pem: String,
    /// reported Kubernetes version (`v1.35.0`)
    pub version: String,
}

/// A node as the kubelet would register it.
#[derive(Debug, Clone)]
pub struct KubeNode {
    /// node name (the Talos hostname)
    pub name: String,
    /// InternalIP address
    pub internal_ip: IpAddr,
    /// Ready condition
    pub ready: bool,
    /// carries the control-plane role label
    pub control_plane: bool,
    /// registers with the `node-role.kubernetes.io/control-plane:NoSchedule` taint (what Talos gives a
    /// control plane unless `cluster.allowSchedulingOnControlPlanes` is true)
    pub no_schedule_taint: bool,
    /// kubelet version
    pub kubelet_version: String,
    /// OS image string
    pub os_image: String,
}

/// Errors starting the simulator.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// the address
        addr: SocketAddr,
        /// the OS error
        source: std::io::Error,
    },
    /// TLS material was unusable.
    #[error(transparent)]
    Pki(#[from] crate::pki::PkiError),
}

/// A running Kubernetes API simulator: one API server (listener) over a store. Clones share both;
/// [`KubeSim::serve_at`] adds another API server over the same store, as every control plane of an
/// HA cluster runs a kube-apiserver backed by the one etcd. A server stops when the last clone of
/// its handle is dropped; the store lives while any server over it does.
#[derive(Clone)]
pub struct KubeSim {
    app: Arc<http::App>,
    addr: SocketAddr,
    /// what this API server reports at `/version` (its kube-apiserver image's tag)
    version: http::ServerVersion,
    _server: Option<Arc<crate::task::AbortOnDrop>>,
}

impl std::fmt::Debug for KubeSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeSim").field("addr", &self.addr).finish()
    }
}

async fn bind(opts: &KubeOptions) -> Result<(tokio::net::TcpListener, SocketAddr), KubeError> {
    let listener = crate::task::bind_again(opts.bind)
        .await
        .map_err(|source| KubeError::Bind {
            addr: opts.bind,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| KubeError::Bind {
        addr: opts.bind,
        source,
    })?;
    Ok((listener, addr))
}

impl KubeSim {
    /// Starts a server over a new, empty store.
    pub async fn start(opts: KubeOptions) -> Result<Self, KubeError> {
        Self::start_with(opts, None).await
    }

    /// Starts a server over a new store holding the objects of `data` (etcd's content after a
    /// reboot), or an empty one.
    pub async fn start_with(
        opts: KubeOptions,
        data: Option<&StoreSnapshot>,
    ) -> Result<Self, KubeError> {
        Self::start_counted(opts, data, crate::requests::RequestCounts::default()).await
    }

    /// [`KubeSim::start_with`], counting requests (as `kube METHOD /path`) into `requests`.
    pub async fn start_counted(
        opts: KubeOptions,
        data: Option<&StoreSnapshot>,
        requests: crate::requests::RequestCounts,
    ) -> Result<Self, KubeError> {
        let (listener, addr) = bind(&opts).await?;
        let app = Arc::new(http::App {
            store: Mutex::new(data.map(Store::from_snapshot).unwrap_or_default()),
            addr,
            requests,
        });
        Self::serve(app, listener, addr, &opts)
    }

    /// Starts another API server over this simulator's store at `opts.bind`, with its own server
    /// certificate and version (each control plane runs its own kube-apiserver).
    pub async fn serve_at(&self, opts: KubeOptions) -> Result<Self, KubeError> {
        let (listener, addr) = bind(&opts).await?;
        Self::serve(self.app.clone(), listener, addr, &opts)
    }

    fn serve(
        app: Arc<http::App>,
        listener: tokio::net::TcpListener,
        addr: SocketAddr,
        opts: &KubeOptions,
    ) -> Result<Self, KubeError> {
        let tls = client_optional_config(opts)?;
        let version = http::ServerVersion(Arc::new(Mutex::new(opts.version.clone())));
        let tls_listener =
            http::TlsListener::new(listener, tls).map_err(|source| KubeError::Bind {
                addr: opts.bind,
                source,
            })?;
        let router = axum::Router::new()
            .fallback(http::handle)
            .layer(axum::Extension(version.clone()))
            .with_state(app.clone());
        let server = tokio::spawn(async move {
            let service = router.into_make_service_with_connect_info::<http::Peer>();
            if let Err(e) = axum::serve(tls_listener, service).await {
                tracing::debug!(error = %e, "kube sim stopped");
            }
        });
        Ok(Self {
            app,
            addr,
            version,
            _server: Some(Arc::new(crate::task::AbortOnDrop(server))),
        })
    }

    /// The listening address of this server.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The Kubernetes version this API server reports at `/version`.
    pub fn version(&self) -> String {
        self.version.get()
    }

    /// Changes the version this API server reports (its static pod now runs another image).
    pub fn set_version(&self, version: &str) {
        self.version.set(version);
    }

    /// Requests served so far, as `kube METHOD /path`.
    pub fn requests(&self) -> crate::requests::RequestCounts {
        self.app.requests.clone()
    }

    /// Everything in the store (etcd's content).
    pub fn data(&self) -> StoreSnapshot {
        self.lock_store().snapshot()
    }

    /// `(id, revision)` of the store: equal versions mean equal content.
    pub fn data_version(&self) -> (String, u64) {
        self.lock_store().version()
    }

    fn lock_store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.app
            .store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A handle on the store that keeps neither it nor any server running.
    pub fn downgrade(&self) -> WeakKubeSim {
        WeakKubeSim {
            app: Arc::downgrade(&self.app),
        }
    }

    /// Deletes a Node object (the node left the cluster).
    pub fn remove_node(&self, name: &str) {
        let mut store = self
            .app
            .store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(t) = store.target("", "v1", "nodes", None) {
            let _ = store.delete(&t, name);
        }
    }

    /// A graceful Talos reset's own drain of its Node: cordoned, its evictable pods evicted once
    /// (PodDisruptionBudgets honoured); returns the pods whose eviction was refused.
    pub fn talos_drain(&self, node: &str) -> Vec<String> {
        self.lock_store().talos_drain(node)
    }

    /// How fast simulated pods terminate and start (the controllers' clock).
    pub fn set_timing(&self, timing: KubeTiming) {
        self.lock_store().set_timing(timing);
    }

    /// Updates the status of an existing Node object (a kubelet's heartbeat); `false` when the
    /// Node does not exist: a registered kubelet whose Node was deleted does not recreate it
    /// (upstream `registerWithAPIServer` returns once `registrationCompleted`; its status updates
    /// then fail with "error getting node": only a kubelet restart registers again).
    pub fn update_node_status(&self, node: KubeNode) -> bool {
        self.lock_store().put_node_status(node_object(&node))
    }

    /// Registers or updates a Node object.
    pub fn upsert_node(&self, node: KubeNode) {
        let obj = node_object(&node);
        self.lock_store().put_node(obj);
    }

    /// Creates an object straight in the store (tests: what a workload would have made): `group` is `""`
    /// for core.
    pub fn create(
        &self,
        (group, version, plural): (&str, &str, &str),
        namespace: Option<&str>,
        object: Value,
    ) -> Result<Value, ApiError> {
        let mut store = self.lock_store();
        let t = store
            .target(group, version, plural, namespace)
            .ok_or_else(|| ApiError::new(404, "NotFound", format!("no type {plural}")))?;
        store.create(&t, object, false)
    }

    /// Creates or replaces an object straight in the store, status included (what a kubelet writes for
    /// its mirror pods, or a controller for its objects): `group` is `""` for core.
    pub fn put(
        &self,
        (group, version, plural): (&str, &str, &str),
        namespace: Option<&str>,
        mut object: Value,
    ) -> Result<Value, ApiError> {
        let mut store = self.lock_store();
        let t = store
            .target(group, version, plural, namespace)
            .ok_or_else(|| ApiError::new(404, "NotFound", format!("no type {plural}")))?;
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if store.get(&t, &name).is_err() {
            return store.create(&t, object, false);
        }
        if let Some(meta) = object["metadata"].as_object_mut() {
            meta.remove("resourceVersion");
        }
        store.update(&t, &name, object.clone(), false)?;
        store.update(&t, &name, object, true)
    }

    /// Deletes an object straight from the store (tests: a disaster a snapshot must undo).
    pub fn delete(
        &self,
        (group, version, plural): (&str, &str, &str),
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        let mut store = self.lock_store();
        let t = store
            .target(group, version, plural, namespace)
            .ok_or_else(|| ApiError::new(404, "NotFound", format!("no type {plural}")))?;
        store.delete(&t, name)
    }

    /// Reads an object straight from the store (for assertions): `group` is `""` for core.
    pub fn get(
        &self,
        group: &str,
        version: &str,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let mut store = self.lock_store();
        store.reconcile();
        let t = store.target(group, version, plural, namespace)?;
        store.get(&t, name).ok()
    }
}

/// The Node object a kubelet registers.
fn node_object(node: &KubeNode) -> Value {
    let mut labels = json!({
        "kubernetes.io/hostname": node.name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
    });
    if node.control_plane {
        labels["node-role.kubernetes.io/control-plane"] = json!("");
    }
    let status = if node.ready { "True" } else { "False" };
    let spec = if node.no_schedule_taint {
        json!({"taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]})
    } else {
        json!({})
    };
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": node.name, "labels": labels},
        "spec": spec,
        "status": {
            "conditions": [{"type": "Ready", "status": status, "reason": if node.ready { "KubeletReady" } else { "KubeletNotReady" },
                            "message": if node.ready { "kubelet is posting ready status" } else { "container runtime network not ready" }}],
            "addresses": [{"type": "InternalIP", "address": node.internal_ip.to_string()}, {"type": "Hostname", "address": node.name}],
            "nodeInfo": {"kubeletVersion": node.kubelet_version, "osImage": node.os_image, "operatingSystem": "linux", "architecture": "amd64"},
        },
    })
}

/// A non-owning handle to the store of a [`KubeSim`].
#[derive(Debug, Clone)]
pub struct WeakKubeSim {
    app: std::sync::Weak<http::App>,
}

impl WeakKubeSim {
    /// The store, while some API server over it still runs; the handle serves nothing itself
    /// (its [`KubeSim::addr`] is the store's first server) but can [`KubeSim::serve_at`].
    pub fn upgrade(&self) -> Option<KubeSim> {
        let app = self.app.upgrade()?;
        Some(KubeSim {
            addr: app.addr,
            app,
            version: http::ServerVersion::default(),
            _server: None,
        })
    }
}

fn client_optional_config(opts: &KubeOptions) -> Result<rustls::ServerConfig, KubeError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let fail = |what: &str, e: String| crate::pki::PkiError {
        what: what.into(),
        reason: e,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(opts.client_ca_pem.as_bytes()) {
        let cert = cert.map_err(|e| fail("cluster CA", e.to_string()))?;
        roots
            .add(cert)
            .map_err(|e| fail("cluster CA", e.to_string()))?;
    }
    // Certificates are verified when presented; a client without one gets 401 from the handler.
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .allow_unauthenticated()
    .build()
    .map_err(|e| fail("client verifier", e.to_string()))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| fail("TLS versions", e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(opts.server_cert.chain()?, opts.server_cert.private_key()?)
        .map_err(|e| fail("server certificate", e.to_string()))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}
