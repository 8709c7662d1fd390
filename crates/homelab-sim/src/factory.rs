//! Image Factory simulator over plain HTTP on loopback: schematics (ids computed as the real
//! factory computes them), the versions and official-extension lists, and deterministic ISO
//! bytes at `/image/<schematic>/<version>/<platform>-<arch>[-secureboot].iso`.

mod schematic;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use serde_json::json;
use sha2::{Digest, Sha256};

pub use schematic::Schematic;

/// An official extension as `/version/<v>/extensions/official` lists it.
#[derive(Debug, Clone)]
pub struct Extension {
    /// e.g. `siderolabs/qemu-guest-agent`
    pub name: String,
    /// extension image version tag
    pub version: String,
    /// short description
    pub description: String,
}

/// What the factory offers.
#[derive(Debug, Clone)]
pub struct FactoryOptions {
    /// address to listen on (port 0 = ephemeral)
    pub bind: SocketAddr,
    /// Talos versions, newest last
    pub versions: Vec<String>,
    /// official extensions (the same list for every version)
    pub extensions: Vec<Extension>,
    /// size of the simulated ISO files in bytes
    pub iso_size: usize,
    /// schematics known from the start (`id → canonical YAML`, as [`FactorySim::schematics`] lists them)
    pub schematics: HashMap<String, String>,
}

impl FactoryOptions {
    /// A factory on `bind` offering every release homelab.yaml can name (v1.11.6, v1.12.0–v1.12.4,
    /// v1.12.11, v1.13.9: the ones a day-2 upgrade goes through) and the extensions the reference homelab
    /// uses. Any other version is a 404.
    pub fn new(bind: SocketAddr) -> Self {
        let ext = |name: &str, version: &str, description: &str| Extension {
            name: name.into(),
            version: version.into(),
            description: description.into(),
        };
        Self {
            bind,
            versions: [
                "v1.11.6", "v1.12.0", "v1.12.1", "v1.12.2", "v1.12.3", "v1.12.4", "v1.12.11",
                "v1.13.9",
            ]
            .map(String::from)
            .to_vec(),
            extensions: vec![
                ext(
                    "siderolabs/iscsi-tools",
                    "v0.2.0",
                    "This system extension provides iSCSI tools.",
                ),
                ext(
                    "siderolabs/nfs-utils",
                    "v2.8.3",
                    "This system extension provides NFS utilities.",
                ),
                ext(
                    "siderolabs/qemu-guest-agent",
                    "10.1.2",
                    "This system extension provides the QEMU guest agent.",
                ),
            ],
            iso_size: 64 * 1024,
            schematics: HashMap::new(),
        }
    }
}

/// Errors starting the simulator.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct FactoryError {
    /// the address
    pub addr: SocketAddr,
    /// the OS error
    pub source: std::io::Error,
}

struct App {
    opts: FactoryOptions,
    schematics: Mutex<HashMap<String, String>>,
    downloads: Mutex<Vec<String>>,
    requests: crate::requests::RequestCounts,
}

impl App {
    fn schematics(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.schematics
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A running Image Factory simulator; stops when the last clone is dropped.
#[derive(Clone)]
pub struct FactorySim {
    app: Arc<App>,
    addr: SocketAddr,
    _server: Arc<crate::task::AbortOnDrop>,
}

impl std::fmt::Debug for FactorySim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FactorySim")
            .field("addr", &self.addr)
            .finish()
    }
}

impl FactorySim {
    /// Starts the server.
    pub async fn start(opts: FactoryOptions) -> Result<Self, FactoryError> {
        let listener = tokio::net::TcpListener::bind(opts.bind)
            .await
            .map_err(|source| FactoryError {
                addr: opts.bind,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| FactoryError {
            addr: opts.bind,
            source,
        })?;
        let app = Arc::new(App {
            schematics: Mutex::new(opts.schematics.clone()),
            opts,
            downloads: Mutex::default(),
            requests: crate::requests::RequestCounts::default(),
        });
        let router = Router::new()
            .route("/schematics", post(create_schematic))
            .route("/schematics/{id}", get(get_schematic))
            .route("/versions", get(versions))
            .route("/version/{version}/extensions/official", get(extensions))
            .route("/image/{id}/{version}/{file}", get(image))
            .route_layer(axum::middleware::from_fn_with_state(app.clone(), count))
            .with_state(app.clone());
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(
                listener.tap_io(|tcp| {
                    let _ = tcp.set_nodelay(true);
                }),
                router,
            )
            .await
            {
                tracing::debug!(error = %e, "factory sim stopped");
            }
        });
        Ok(Self {
            app,
            addr,
            _server: Arc::new(crate::task::AbortOnDrop(server)),
        })
    }

    /// The base URL (`http://127.0.0.1:port`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requests served so far, as `factory METHOD /path`.
    pub fn requests(&self) -> crate::requests::RequestCounts {
        self.app.requests.clone()
    }

    /// Image paths downloaded so far, in order.
    pub fn downloads(&self) -> Vec<String> {
        self.app
            .downloads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The schematics created so far (`id → canonical YAML`).
    pub fn schematics(&self) -> HashMap<String, String> {
        self.app.schematics().clone()
    }

    /// The bytes the factory serves for an image path, for comparing downloads.
    pub fn image_bytes(&self, schematic: &str, version: &str, file: &str) -> Vec<u8> {
        iso_bytes(schematic, version, file, self.app.opts.iso_size)
    }
}

fn text(code: StatusCode, message: impl Into<String>) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message.into(),
    )
        .into_response()
}

async fn count(
    State(app): State<Arc<App>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    app.requests.record(&format!(
        "factory {} {}",
        request.method(),
        request.uri().path()
    ));
    next.run(request).await
}

async fn create_schematic(State(app): State<Arc<App>>, body: String) -> Response {
    match Schematic::parse(&body) {
        Ok(s) => {
            let id = s.id();
            app.schematics()
                .insert(id.clone(), s.canonical().to_owned());
            let body = json!({"id": id, "schematic": s.canonical()});
            (
                StatusCode::CREATED,
                [(header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
                .into_response()
        }
        Err(e) => text(StatusCode::BAD_REQUEST, e),
    }
}

async fn get_schematic(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    match app.schematics().get(&id) {
        Some(yaml) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/yaml")],
            yaml.clone(),
        )
            .into_response(),
        None => text(StatusCode::NOT_FOUND, "schematic ID not found"),
    }
}

async fn versions(State(app): State<Arc<App>>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        json!(app.opts.versions).to_string(),
    )
        .into_response()
}

async fn extensions(State(app): State<Arc<App>>, Path(version): Path<String>) -> Response {
    if !app.opts.versions.contains(&version) {
        return text(
            StatusCode::NOT_FOUND,
            format!("version {version} not found"),
        );
    }
    let list: Vec<_> = app
        .opts
        .extensions
        .iter()
        .map(|e| {
            let digest = hex::encode(Sha256::digest(format!("{}:{}", e.name, e.version)));
            json!({
                "name": e.name,
                "ref": format!("ghcr.io/{}:{}", e.name, e.version),
                "digest": format!("sha256:{digest}"),
                "author": "Sidero Labs",
                "description": e.description,
            })
        })
        .collect();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        json!(list).to_string(),
    )
        .into_response()
}

/// `<platform>-<arch>[-secureboot].iso` → valid?
fn valid_iso_name(file: &str) -> bool {
    let Some(stem) = file.strip_suffix(".iso") else {
        return false;
    };
    let stem = stem.strip_suffix("-secureboot").unwrap_or(stem);
    let Some((platform, arch)) = stem.rsplit_once('-') else {
        return false;
    };
    matches!(arch, "amd64" | "arm64")
        && matches!(
            platform,
            "metal" | "nocloud" | "aws" | "azure" | "gcp" | "openstack" | "vmware" | "hcloud"
        )
}

async fn image(
    State(app): State<Arc<App>>,
    Path((id, version, file)): Path<(String, String, String)>,
) -> Response {
    if !app.schematics().contains_key(&id) {
        return text(StatusCode::NOT_FOUND, "schematic ID not found");
    }
    if !app.opts.versions.contains(&version) {
        return text(
            StatusCode::NOT_FOUND,
            format!("version {version} not found"),
        );
    }
    if !valid_iso_name(&file) {
        return text(
            StatusCode::NOT_FOUND,
            format!("artifact {file} not found (the simulator serves ISO images only)"),
        );
    }
    app.downloads
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(format!("{id}/{version}/{file}"));
    let bytes = iso_bytes(&id, &version, &file, app.opts.iso_size);
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        bytes,
    )
        .into_response()
}

/// Deterministic ISO-like bytes: a SHA-256 stream seeded by the path, with the ISO 9660
/// primary volume descriptor magic at offset 0x8001 when the file is large enough.
fn iso_bytes(id: &str, version: &str, file: &str, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size);
    let seed = format!("{id}/{version}/{file}");
    let mut counter = 0u64;
    while out.len() < size {
        let mut h = Sha256::new();
        h.update(seed.as_bytes());
        h.update(counter.to_be_bytes());
        out.extend_from_slice(&h.finalize());
        counter += 1;
    }
    out.truncate(size);
    if size >= 0x8006 {
        out[0x8000] = 1;
        out[0x8001..0x8006].copy_from_slice(b"CD001");
    }
    // Sidero signs its SecureBoot media with its own key; the plain ISO is unsigned.
    if file.contains("-secureboot") {
        crate::proxmox::sign_medium(&mut out, crate::proxmox::SIDERO_SIGNER);
    }
    // Which platform the guest runs (only nocloud reads a cloud-init drive).
    if let Some((platform, _)) = file.split_once('-') {
        crate::proxmox::mark_platform(&mut out, platform);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_names_follow_the_factory_scheme() {
        assert!(valid_iso_name("metal-amd64-secureboot.iso"));
        assert!(valid_iso_name("nocloud-amd64.iso"));
        assert!(!valid_iso_name("metal-amd64.raw.xz"));
        assert!(!valid_iso_name("metal-x86.iso"));
    }

    #[test]
    fn iso_bytes_are_deterministic_and_look_like_iso9660() {
        let a = iso_bytes("id", "v1.12.4", "metal-amd64.iso", 64 * 1024);
        assert_eq!(a, iso_bytes("id", "v1.12.4", "metal-amd64.iso", 64 * 1024));
        assert_ne!(
            a,
            iso_bytes("id", "v1.12.4", "nocloud-amd64.iso", 64 * 1024)
        );
        assert_eq!(&a[0x8001..0x8006], b"CD001");
    }
}
