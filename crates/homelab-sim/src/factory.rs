//! An Image Factory simulator over plain HTTP on loopback: schematics (ids computed from the canonical
//! schematic as the real factory does), the version and official-extension lists, and deterministic ISO
//! bytes for the Proxmox simulator's download-url. Unknown schematics and versions answer 404.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use homelab_talos::factory::Schematic;

/// Official extensions the simulated factory offers.
pub const OFFICIAL_EXTENSIONS: &[&str] = &[
    "siderolabs/qemu-guest-agent",
    "siderolabs/nfs-utils",
    "siderolabs/iscsi-tools",
    "siderolabs/util-linux-tools",
    "siderolabs/intel-ucode",
];

/// Talos versions the simulated factory offers.
pub const VERSIONS: &[&str] = &["v1.11.5", "v1.12.0", "v1.12.4", "v1.12.11"];

#[derive(Default)]
struct Known {
    schematics: BTreeSet<String>,
}

/// A running factory simulator.
pub struct FactorySim {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FactorySim {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FactorySim {
    /// Serves on `127.0.0.1:port` (0 = ephemeral).
    pub async fn start(port: u16) -> std::io::Result<Self> {
        let state = Arc::new(Mutex::new(Known::default()));
        let app = Router::new()
            .route("/schematics", post(create))
            .route("/versions", get(versions))
            .route("/version/{version}/extensions/official", get(extensions))
            .route("/image/{id}/{version}/{file}", get(image))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, task })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

type Shared = Arc<Mutex<Known>>;

fn bad(status: StatusCode, message: impl Into<String>) -> Response {
    (status, message.into()).into_response()
}

/// Reads the posted schematic, as the factory does, and answers its id (201 Created, `{"id": …}`).
async fn create(State(known): State<Shared>, body: String) -> Response {
    let value: serde_json::Value = match serde_saphyr::from_str(&body) {
        Ok(v) => v,
        Err(e) => {
            return bad(
                StatusCode::BAD_REQUEST,
                format!("error parsing schematic: {e}"),
            );
        }
    };
    let customization = &value["customization"];
    if let Some(map) = value.as_object()
        && map.keys().any(|k| k != "customization" && k != "overlay")
    {
        return bad(
            StatusCode::BAD_REQUEST,
            "error parsing schematic: unknown field",
        );
    }
    let extensions: Vec<String> = customization["systemExtensions"]["officialExtensions"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if let Some(unknown) = extensions
        .iter()
        .find(|e| !OFFICIAL_EXTENSIONS.contains(&e.as_str()))
    {
        return bad(
            StatusCode::BAD_REQUEST,
            format!("extension {unknown} is not an official extension"),
        );
    }
    let schematic = Schematic::with_extensions(extensions);
    let Ok(id) = schematic.id() else {
        return bad(StatusCode::BAD_REQUEST, "invalid schematic");
    };
    known
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .schematics
        .insert(id.clone());
    (
        StatusCode::CREATED,
        axum::Json(serde_json::json!({"id": id})),
    )
        .into_response()
}

async fn versions() -> Response {
    axum::Json(VERSIONS).into_response()
}

async fn extensions(Path(version): Path<String>) -> Response {
    if !VERSIONS.contains(&version.as_str()) {
        return bad(
            StatusCode::NOT_FOUND,
            format!("version {version} not found"),
        );
    }
    let list: Vec<serde_json::Value> = OFFICIAL_EXTENSIONS
        .iter()
        .map(|name| {
            let short = name.rsplit('/').next().unwrap_or(name);
            serde_json::json!({"name": name, "ref": format!("ghcr.io/{name}:{version}"), "digest": "sha256:0", "author": "Sidero Labs", "description": short})
        })
        .collect();
    axum::Json(list).into_response()
}

/// Deterministic ISO bytes: the same schematic, version and file always give the same image.
pub fn iso_bytes(id: &str, version: &str, file: &str) -> Vec<u8> {
    let header = format!("HOMELAB-SIM TALOS ISO {id} {version} {file}\n");
    let mut bytes = header.clone().into_bytes();
    while bytes.len() < 64 * 1024 {
        bytes.extend_from_slice(header.as_bytes());
    }
    bytes
}

async fn image(
    State(known): State<Shared>,
    Path((id, version, file)): Path<(String, String, String)>,
) -> Response {
    if !known
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .schematics
        .contains(&id)
    {
        return bad(StatusCode::NOT_FOUND, format!("schematic {id} not found"));
    }
    if !VERSIONS.contains(&version.as_str()) {
        return bad(
            StatusCode::NOT_FOUND,
            format!("version {version} not found"),
        );
    }
    let valid = file.strip_suffix(".iso").is_some_and(|p| {
        [
            "metal-amd64",
            "nocloud-amd64",
            "metal-amd64-secureboot",
            "nocloud-amd64-secureboot",
        ]
        .contains(&p)
    });
    if !valid {
        return bad(StatusCode::NOT_FOUND, format!("unknown image {file}"));
    }
    (
        [("content-type", "application/octet-stream")],
        iso_bytes(&id, &version, &file),
    )
        .into_response()
}
