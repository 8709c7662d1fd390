//! The HTTPS front of the simulator, shaped like pveproxy: TLS accept loop, `/api2/json` routing, token
//! authentication (401 without a body, delayed), body rules (no chunked, no body on GET/DELETE, 512 KiB),
//! fault injection, permission checks, schema validation, and PVE's response envelope and error shape.

use std::collections::BTreeMap;
use std::sync::Arc;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use super::api::{self, ApiError, Caller};
use super::faults::FaultKind;
use super::schema;
use super::state::Shared;

/// Returned by the service to make hyper close the connection without an answer.
#[derive(Debug)]
pub(crate) struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("injected connection drop")
    }
}

impl std::error::Error for DropConnection {}

const MAX_BODY: usize = 512 * 1024;

/// Requests pveproxy serves on one connection before it closes it (`keep_alive => 100` in pve-manager's
/// `PVE/Service/pveproxy.pm`; `AnyEvent.pm` counts it down per request).
const KEEP_ALIVE_REQUESTS: u32 = 100;

/// What one connection has done: requests in flight, requests served, and when it was last busy.
struct ConnState {
    in_flight: u32,
    served: u32,
    last_active: tokio::time::Instant,
}

pub(crate) async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else { continue };
                // Small response writes must not wait out the client's delayed ACK (Nagle).
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                let shared = shared.clone();
                let stop = stop.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    connection(tls, shared, stop).await;
                });
            }
        }
    }
}

/// Serves one connection as pveproxy does: keep-alive for at most [`KEEP_ALIVE_REQUESTS`] requests,
/// `Connection: close` after every answer of 400 or more, and closed after `idle_timeout` without a request
/// (the AnyEvent handle timeout, 5 s).
async fn connection(
    tls: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let state = Arc::new(std::sync::Mutex::new(ConnState {
        in_flight: 0,
        served: 0,
        last_active: tokio::time::Instant::now(),
    }));
    let svc_state = state.clone();
    let svc_shared = shared.clone();
    let svc = hyper::service::service_fn(move |req| {
        let shared = svc_shared.clone();
        let state = svc_state.clone();
        async move {
            let served = {
                let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
                s.in_flight += 1;
                s.served += 1;
                s.served
            };
            let result = respond(shared.clone(), req).await;
            let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
            s.in_flight -= 1;
            s.last_active = tokio::time::Instant::now();
            result.map(|mut resp| {
                if resp.status().as_u16() >= 400 || served >= KEEP_ALIVE_REQUESTS {
                    shared
                        .connection_closes
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    resp.headers_mut().insert(
                        hyper::header::CONNECTION,
                        hyper::header::HeaderValue::from_static("close"),
                    );
                }
                resp
            })
        }
    });
    let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), svc);
    tokio::pin!(conn);
    let idle = shared.timing.idle_timeout;
    let mut closing = false;
    loop {
        let deadline = {
            let s = state.lock().unwrap_or_else(|p| p.into_inner());
            s.last_active + idle
        };
        tokio::select! {
            _ = conn.as_mut() => break,
            _ = stop.changed(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            () = tokio::time::sleep_until(deadline), if !closing => {
                let s = state.lock().unwrap_or_else(|p| p.into_inner());
                if s.in_flight == 0 && s.last_active + idle <= tokio::time::Instant::now() {
                    drop(s);
                    shared.idle_closes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

type Resp = Response<Full<Bytes>>;

fn plain(status: u16, reason: &str, body: &str) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    set_reason(&mut r, reason);
    r
}

fn set_reason(r: &mut Resp, reason: &str) {
    let line: String = reason
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| c.is_ascii() && !c.is_ascii_control())
        .collect();
    if let Ok(phrase) = hyper::ext::ReasonPhrase::try_from(line.into_bytes()) {
        r.extensions_mut().insert(phrase);
    }
}

fn json_response(status: u16, reason: &str, body: &Value) -> Resp {
    let mut r = plain(status, reason, &body.to_string());
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    r
}

fn error_response(e: &ApiError) -> Resp {
    let message = if e.message.ends_with('\n') {
        e.message.clone()
    } else {
        format!("{}\n", e.message)
    };
    let mut body = json!({"data": null, "message": message});
    if let Some(errors) = &e.errors {
        body["errors"] = json!(errors);
    }
    json_response(e.status, &e.message, &body)
}

/// `PVEAPIToken=USER@REALM!TOKEN=SECRET` (or with a space), URI-unescaped, split at the last `=`.
fn token_from(req: &Request<Incoming>) -> Option<(String, String)> {
    let raw = req
        .headers()
        .get(hyper::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let value = raw
        .strip_prefix("PVEAPIToken=")
        .or_else(|| raw.strip_prefix("PVEAPIToken "))?;
    let value: String =
        form_urlencoded::parse(format!("v={}", value.replace('+', "%2B")).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
    let (id, secret) = value.rsplit_once('=')?;
    Some((id.to_string(), secret.to_string()))
}

fn parse_body(content_type: &str, body: &[u8]) -> Result<Vec<(String, String)>, ApiError> {
    if body.is_empty() {
        return Ok(Vec::new());
    }
    if content_type.starts_with("application/json") {
        let v: Value = serde_json::from_slice(body).map_err(|e| ApiError {
            status: 400,
            message: format!("invalid JSON body: {e}"),
            errors: None,
        })?;
        let Value::Object(map) = v else {
            return Err(ApiError {
                status: 400,
                message: "JSON body must be an object".into(),
                errors: None,
            });
        };
        return Ok(map
            .into_iter()
            .map(|(k, v)| {
                let text = match v {
                    Value::String(s) => s,
                    Value::Bool(b) => {
                        if b {
                            "1".into()
                        } else {
                            "0".into()
                        }
                    }
                    other => other.to_string(),
                };
                (k, text)
            })
            .collect());
    }
    Ok(form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect())
}

async fn respond(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Resp, DropConnection> {
    let method = req.method().as_str().to_string();
    let full_path = req.uri().path().to_string();
    let Some(path) = full_path.strip_prefix("/api2/json") else {
        return Ok(plain(404, "Not Found", ""));
    };
    // Authentication first; failures are slow and carry no body.
    let caller = match token_from(&req) {
        None => {
            tokio::time::sleep(shared.timing.auth_failure_delay).await;
            return Ok(plain(401, "No ticket", ""));
        }
        Some((id, secret)) if id == shared.token_id && secret == shared.token_secret => {
            let (user, token) = id
                .split_once('!')
                .map(|(u, t)| (u.to_string(), t.to_string()))
                .unwrap_or_default();
            Caller { user, token }
        }
        Some(_) => {
            tokio::time::sleep(shared.timing.auth_failure_delay).await;
            return Ok(plain(401, "Authentication failed!", ""));
        }
    };
    if req
        .headers()
        .get(hyper::header::TRANSFER_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"chunked"))
    {
        return Ok(plain(501, "chunked transfer encoding not supported", ""));
    }
    let content_length: usize = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if (method == "GET" || method == "DELETE") && content_length > 0 {
        return Ok(plain(
            501,
            &format!("Unexpected content for method '{method}'"),
            "",
        ));
    }
    if content_length > MAX_BODY {
        return Ok(plain(501, "for data too large", ""));
    }
    let content_type = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let query = req.uri().query().unwrap_or("").to_string();
    let Ok(body) = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map(|b| b.to_bytes())
    else {
        return Ok(plain(501, "for data too large", ""));
    };
    let mut params: BTreeMap<String, String> = match parse_body(&content_type, &body) {
        Ok(p) => p.into_iter().collect(),
        Err(e) => return Ok(error_response(&e)),
    };
    // Query-string parameters take precedence over body keys.
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        params.insert(k.into_owned(), v.into_owned());
    }
    let Some((endpoint, uri_params)) = shared.schema.route(&method, path) else {
        return Ok(plain(
            501,
            &format!("Method '{method} {full_path}' not implemented"),
            "",
        ));
    };
    let key = endpoint.key.clone();
    shared.requests.record(&key);
    let info = endpoint.info.clone();
    for (k, v) in &uri_params {
        if params.get(k).is_some_and(|given| given != v) {
            return Ok(error_response(&ApiError::param(
                k,
                "duplicate parameter (already defined in URI) with conflicting values!",
            )));
        }
        params.insert(k.clone(), v.clone());
    }
    if let Some(node) = uri_params.get("node") {
        let known = shared.world().nodes.contains(node);
        if !known {
            return Ok(error_response(&ApiError::die(format!(
                "hostname lookup '{node}' failed - failed to get address info for: {node}: Name or service not known"
            ))));
        }
    }
    let proxy_failure = shared.world().faults.take_proxy_failure(&key);
    if let Some(code) = proxy_failure {
        // pveproxy passes AnyEvent::HTTP's pseudo-status on when forwarding to the node fails: 596 for TLS
        // trouble, 599 for a timeout or other errors; the request did not reach the API handler.
        let reason = if code == 596 {
            "certificate verify failed"
        } else {
            "Connection timed out"
        };
        return Ok(plain(code, reason, ""));
    }
    let decision = shared.world().faults.decide(&key);
    if !decision.latency.is_zero() {
        tokio::time::sleep(decision.latency).await;
    }
    match decision.fault {
        Some(FaultKind::DropBefore) => return Err(DropConnection),
        Some(FaultKind::Unavailable) => return Ok(plain(503, "Service Unavailable", "")),
        Some(FaultKind::LockTimeout) => {
            let vmid = uri_params
                .get("vmid")
                .or(params.get("vmid"))
                .cloned()
                .unwrap_or_else(|| "0".into());
            return Ok(error_response(&ApiError::die(format!(
                "can't lock file '/var/lock/qemu-server/lock-{vmid}.conf' - got timeout"
            ))));
        }
        _ => {}
    }
    if info.get("allowtoken").and_then(Value::as_i64) == Some(0) {
        return Ok(error_response(&ApiError::perm(format!(
            "URI '{full_path}' not available with API token, need proper ticket."
        ))));
    }
    if let Some(check) = info.get("permissions").and_then(|p| p.get("check")) {
        let verdict = shared.world().acl.check(check, &uri_params);
        if let Err(text) = verdict {
            return Ok(error_response(&ApiError::perm(text)));
        }
    }
    if let Err(errors) = schema::validate(&info, &params) {
        return Ok(error_response(&ApiError::params(errors)));
    }
    let result = api::handle(&shared, &key, &params, &caller).await;
    if decision.fault == Some(FaultKind::DropAfter) {
        return Err(DropConnection);
    }
    Ok(match result {
        Ok(reply) => {
            let mut body = json!({"data": reply.data});
            if let Some(total) = reply.total {
                body["total"] = json!(total);
            }
            json_response(200, "OK", &body)
        }
        Err(e) => error_response(&e),
    })
}
