//! HTTPS front of the Kubernetes simulator: TLS with client certificates from the cluster CA
//! (no certificate → 401 Unauthorized, as with anonymous auth disabled), URL routing for
//! `/api`, `/apis`, `/version` and resource paths, content negotiation for `Table` output.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::serve::IncomingStream;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::store::{ApiError, Store};
use super::{table, types};
use crate::pki;
use crate::task::AbortOnDrop;

/// The authenticated client of a connection.
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    pub(crate) user: Option<String>,
}

impl axum::extract::connect_info::Connected<IncomingStream<'_, TlsListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// Accepts TCP and completes TLS handshakes in the background.
pub(crate) struct TlsListener {
    rx: mpsc::Receiver<(tokio_rustls::server::TlsStream<tokio::net::TcpStream>, Peer)>,
    local: SocketAddr,
    _accept: AbortOnDrop,
}

impl TlsListener {
    pub(crate) fn new(listener: TcpListener, tls: rustls::ServerConfig) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let (tx, rx) = mpsc::channel(16);
        let accept = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                // Small response writes must not wait out the client's delayed ACK (Nagle).
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let user = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .and_then(|c| pki::common_name(c));
                    let _ = tx.send((stream, Peer { user })).await;
                });
            }
        });
        Ok(Self {
            rx,
            local,
            _accept: AbortOnDrop(accept),
        })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = Peer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            // The accept task only ends when aborted; park forever then.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        let _ = self.local;
        Ok(Peer { user: None })
    }
}

pub(crate) struct App {
    pub(crate) store: Mutex<Store>,
    pub(crate) addr: SocketAddr,
    pub(crate) requests: crate::requests::RequestCounts,
}

/// The version one API server reports (servers over the same store may run different versions
/// while a Kubernetes upgrade rolls over the control planes).
#[derive(Clone, Default)]
pub(crate) struct ServerVersion(pub(crate) Arc<Mutex<String>>);

impl ServerVersion {
    pub(crate) fn get(&self) -> String {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set(&self, version: &str) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = version.to_owned();
    }
}

impl App {
    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn json_response(code: StatusCode, body: &Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn error(e: &ApiError) -> Response {
    json_response(
        StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &e.to_status(),
    )
}

fn query_param<'a>(uri: &'a Uri, key: &str) -> Option<&'a str> {
    uri.query()?
        .split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The single entry point: authenticates, then routes by path.
pub(crate) async fn handle(
    State(app): State<Arc<App>>,
    axum::Extension(version): axum::Extension<ServerVersion>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if peer.user.is_none() {
        return error(&ApiError::new(401, "Unauthorized", "Unauthorized"));
    }
    let path = uri.path().trim_end_matches('/');
    app.requests.record(&format!("kube {method} {path}"));
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match (method.clone(), segs.as_slice()) {
        (Method::GET, ["version"]) => json_response(StatusCode::OK, &version_doc(&version.get())),
        (Method::GET, ["healthz" | "readyz" | "livez"]) => (StatusCode::OK, "ok").into_response(),
        (Method::GET, ["api"]) => json_response(
            StatusCode::OK,
            &json!({"kind": "APIVersions", "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": app.addr.to_string()}]}),
        ),
        (Method::GET, ["apis"]) => {
            json_response(StatusCode::OK, &types::group_list(app.store().types()))
        }
        (Method::GET, ["apis", group]) => match types::group(app.store().types(), group) {
            Some(doc) => json_response(StatusCode::OK, &doc),
            None => not_found(path),
        },
        (Method::GET, ["api", "v1"]) => discovery(&app, "", "v1", path),
        (Method::GET, ["apis", group, version]) => discovery(&app, group, version, path),
        (_, ["api", "v1", rest @ ..]) => {
            resource(&app, &method, &uri, &headers, &body, "", "v1", rest)
        }
        (_, ["apis", group, version, rest @ ..]) => {
            resource(&app, &method, &uri, &headers, &body, group, version, rest)
        }
        _ => not_found(path),
    }
}

fn not_found(path: &str) -> Response {
    error(&ApiError::new(
        404,
        "NotFound",
        format!("the server could not find the requested resource ({path})"),
    ))
}

fn discovery(app: &App, group: &str, version: &str, path: &str) -> Response {
    match types::resource_list(app.store().types(), group, version) {
        Some(doc) => json_response(StatusCode::OK, &doc),
        None => not_found(path),
    }
}

fn version_doc(version: &str) -> Value {
    let trimmed = version.trim_start_matches('v');
    let mut parts = trimmed.split('.');
    let major = parts.next().unwrap_or("1");
    let minor = parts.next().unwrap_or("0");
    json!({
        "major": major, "minor": minor, "gitVersion": version, "gitCommit": "homelab-sim",
        "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.25.5",
        "compiler": "gc", "platform": "linux/amd64",
    })
}

fn parse_body(headers: &HeaderMap, body: &Bytes) -> Result<Value, ApiError> {
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::new(400, "BadRequest", "the body is not UTF-8"))?;
    if ctype.contains("yaml") {
        // The API server reads YAML with go-yaml, whose alias limit refuses a "billion laughs".
        homelab_goyaml::alias::check(text)
            .map_err(|e| ApiError::new(400, "BadRequest", format!("invalid YAML body: {e}")))?;
        serde_saphyr::from_str::<Value>(text)
            .map_err(|e| ApiError::new(400, "BadRequest", format!("invalid YAML body: {e}")))
    } else {
        serde_json::from_str::<Value>(text)
            .map_err(|e| ApiError::new(400, "BadRequest", format!("invalid JSON body: {e}")))
    }
}

#[allow(clippy::too_many_arguments)]
fn resource(
    app: &App,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
    group: &str,
    version: &str,
    rest: &[&str],
) -> Response {
    // [plural] [plural,name] [plural,name,status] [namespaces,ns,plural] [namespaces,ns,plural,name] [..,status]
    let (namespace, plural, name, sub) = match rest {
        [plural] => (None, *plural, None, None),
        ["namespaces", ns, "status"] if group.is_empty() => {
            (None, "namespaces", Some(*ns), Some("status"))
        }
        ["namespaces", ns, plural] => (Some(*ns), *plural, None, None),
        ["namespaces", ns, plural, name] => (Some(*ns), *plural, Some(*name), None),
        ["namespaces", ns, plural, name, sub] => (Some(*ns), *plural, Some(*name), Some(*sub)),
        [plural, name] => (None, *plural, Some(*name), None),
        [plural, name, sub] => (None, *plural, Some(*name), Some(*sub)),
        _ => return not_found(uri.path()),
    };
    let mut store = app.store();
    // The controllers catch up with the time passed before anyone sees the objects.
    store.reconcile();
    if group.is_empty() && plural == "pods" && sub == Some("eviction") {
        let (Some(ns), Some(name)) = (namespace, name) else {
            return not_found(uri.path());
        };
        if method != Method::POST {
            return error(&ApiError::new(
                405,
                "MethodNotAllowed",
                format!(
                    "the server does not allow this method on the requested resource ({method})"
                ),
            ));
        }
        return match parse_body(headers, body).and_then(|b| store.evict(ns, name, &b)) {
            Ok(v) => json_response(StatusCode::CREATED, &v),
            Err(e) => error(&e),
        };
    }
    if sub.is_some_and(|s| s != "status") {
        return not_found(uri.path());
    }
    let Some(target) = store.target(group, version, plural, namespace) else {
        return not_found(uri.path());
    };
    if !target.ty.namespaced && namespace.is_some() {
        return not_found(uri.path());
    }
    let status_only = sub == Some("status");
    let wants_table = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| {
            a.split(',')
                .next()
                .is_some_and(|first| first.contains("as=Table"))
        });
    let result = match (method, name) {
        (&Method::GET, None) => {
            if query_param(uri, "watch").is_some_and(|w| w == "true" || w == "1") {
                return error(&ApiError::new(405, "MethodNotAllowed", "watch is not supported by the simulator"));
            }
            let selector = query_param(uri, "labelSelector").map(percent_decode);
            let fields = query_param(uri, "fieldSelector").map(percent_decode);
            if let Some(f) = fields.as_deref()
                && let Some(bad) = f.split(',').filter(|r| !r.is_empty()).find(|r| {
                    let field = r.split(['=', '!']).next().unwrap_or_default().trim();
                    super::store::field_pointer(field).is_none()
                })
            {
                return error(&ApiError::new(
                    400,
                    "BadRequest",
                    format!("\"{bad}\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\", \"spec.nodeName\", \"status.phase\" are supported by the simulator"),
                ));
            }
            let list = store.list_selected(&target, selector.as_deref(), fields.as_deref());
            Ok((StatusCode::OK, if wants_table { table::table(&target.ty.kind, &list) } else { list }))
        }
        (&Method::GET, Some(name)) => store.get(&target, name).map(|obj| {
            if wants_table {
                let list = json!({"metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]}, "items": [obj]});
                (StatusCode::OK, table::table(&target.ty.kind, &list))
            } else {
                (StatusCode::OK, obj)
            }
        }),
        (&Method::POST, None) => {
            let dry = query_param(uri, "dryRun").is_some();
            parse_body(headers, body).and_then(|b| store.create(&target, b, dry)).map(|v| (StatusCode::CREATED, v))
        }
        (&Method::PUT, Some(name)) => {
            parse_body(headers, body).and_then(|b| store.update(&target, name, b, status_only)).map(|v| (StatusCode::OK, v))
        }
        (&Method::PATCH, Some(name)) => patch(&mut store, &target, name, uri, headers, body, status_only),
        (&Method::DELETE, Some(name)) => store.delete(&target, name).map(|v| (StatusCode::OK, v)),
        _ => Err(ApiError::new(405, "MethodNotAllowed", format!("the server does not allow this method on the requested resource ({method})"))),
    };
    match result {
        Ok((code, v)) => json_response(code, &v),
        Err(e) => error(&e),
    }
}

#[allow(clippy::too_many_arguments)]
fn patch(
    store: &mut Store,
    target: &super::store::Target,
    name: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
    status_only: bool,
) -> Result<(StatusCode, Value), ApiError> {
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let ctype = ctype.split(';').next().unwrap_or_default().trim();
    match ctype {
        "application/apply-patch+yaml" => {
            if query_param(uri, "fieldManager").is_none_or(str::is_empty) {
                return Err(ApiError::new(
                    422,
                    "Invalid",
                    "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                ));
            }
            let applied = parse_body(headers, body)?;
            let (v, created) = store.apply(target, name, applied)?;
            Ok((
                if created {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                },
                v,
            ))
        }
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
            let p = parse_body(headers, body)?;
            store
                .patch(target, name, &p, status_only)
                .map(|v| (StatusCode::OK, v))
        }
        other => Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml (got {other:?})"
            ),
        )),
    }
}
