//! The HTTP core: one `Client` per endpoint, building `/api2/json` URLs, sending form bodies with the token
//! header, decoding PVE's `{"data": …}` envelope and error shapes, and retrying transient faults with a bound.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;

use crate::auth::ApiToken;
use crate::error::{Error, Result};
use crate::events::{ClientEvent, EventSink};
use crate::tls::{self, INSECURE_WARNING, TlsTrust};

/// How long pveproxy keeps an idle connection (`AnyEvent.pm`: the handle timeout, 5 s).
const PVEPROXY_IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// How transient faults are retried.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in total, including the first (1 = no retry).
    pub attempts: u32,
    /// Delay before the first retry; doubled each time.
    pub initial_delay: Duration,
    /// Upper bound of a single delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    pub(crate) fn delay(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.min(16));
        self.initial_delay
            .saturating_mul(factor)
            .min(self.max_delay)
    }
}

/// Everything needed to talk to one Proxmox endpoint.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// `https://HOST:8006` (a trailing `/api2/json` is accepted).
    pub endpoint: String,
    pub token: ApiToken,
    pub trust: TlsTrust,
    /// Per-request timeout.
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
}

impl ClientOptions {
    /// Options with verified TLS against the system roots and default timeouts.
    pub fn new(endpoint: impl Into<String>, token: ApiToken) -> Self {
        ClientOptions {
            endpoint: endpoint.into(),
            token,
            trust: TlsTrust::SystemRoots,
            request_timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
        }
    }
}

/// An async Proxmox VE API client.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: ApiToken,
    retry: RetryPolicy,
    events: EventSink,
    warning: Option<&'static str>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field("token", &self.token)
            .finish()
    }
}

/// The parameters of one request (query string for GET/DELETE, form body for POST/PUT).
pub(crate) type Params = Vec<(String, String)>;

impl Client {
    /// Builds a client. With [`TlsTrust::Insecure`], [`Client::tls_warning`] returns a warning and the event
    /// sink (if set later) does not get it again: callers should surface it right after building.
    pub fn new(options: ClientOptions) -> Result<Self> {
        let base = parse_endpoint(&options.endpoint)?;
        let tls = tls::client_config(&options.trust)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(options.request_timeout)
            .connect_timeout(Duration::from_secs(10))
            // pveproxy closes a keep-alive connection after 5 s without a request; a pooled connection
            // older than that would be dead when reused.
            .pool_idle_timeout(PVEPROXY_IDLE_TIMEOUT.saturating_sub(Duration::from_secs(1)))
            .build()
            .map_err(|e| Error::Tls(format!("cannot build the HTTP client: {e}")))?;
        let warning = matches!(options.trust, TlsTrust::Insecure).then_some(INSECURE_WARNING);
        Ok(Client {
            http,
            base,
            token: options.token,
            retry: options.retry,
            events: EventSink::none(),
            warning,
        })
    }

    /// Sends progress, retry and warning events to `sink` (the library never prints).
    pub fn with_events(mut self, sink: impl Fn(&ClientEvent) + Send + Sync + 'static) -> Self {
        self.events = EventSink(Some(Arc::new(sink)));
        if let Some(w) = self.warning {
            self.events.emit(&ClientEvent::Warning {
                message: w.to_string(),
            });
        }
        self
    }

    /// The warning to show when certificate verification is off.
    pub fn tls_warning(&self) -> Option<&'static str> {
        self.warning
    }

    /// The base URL, `https://HOST:PORT/api2/json`.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// The token id in use.
    pub fn token_id(&self) -> &str {
        self.token.id()
    }

    pub(crate) fn events(&self) -> &EventSink {
        &self.events
    }

    pub(crate) fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// GET with retries.
    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: Params,
    ) -> Result<T> {
        self.call(Method::GET, segments, query, Safety::Idempotent)
            .await
    }

    /// A request with retries on transient faults; `Safety::Once` only resends when the request certainly
    /// did not take effect (connect failure, config-lock timeout).
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        params: Params,
        safety: Safety,
    ) -> Result<T> {
        let mut retry = 0;
        loop {
            match self.send_once::<T>(method.clone(), segments, &params).await {
                Ok(v) => return Ok(v),
                Err(err) => {
                    let retryable = match safety {
                        Safety::Idempotent => err.is_transient(),
                        Safety::Once => err.is_transient() && err.never_reached_server(),
                    };
                    retry += 1;
                    if !retryable || retry >= self.retry.attempts {
                        return Err(err);
                    }
                    let delay = self.retry.delay(retry - 1);
                    self.events.emit(&ClientEvent::Retrying {
                        method: method.to_string(),
                        path: display_path(segments),
                        attempt: retry + 1,
                        of: self.retry.attempts,
                        delay,
                        reason: err.to_string(),
                    });
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// One request, no retry.
    pub(crate) async fn send_once<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        params: &Params,
    ) -> Result<T> {
        let path = display_path(segments);
        let mut url = self.base.clone();
        {
            let mut segs = url
                .path_segments_mut()
                .map_err(|_| Error::InvalidEndpoint {
                    endpoint: self.base.to_string(),
                    reason: "cannot be a base URL".into(),
                })?;
            segs.extend(segments);
        }
        let body_in_query = method == Method::GET || method == Method::DELETE;
        if body_in_query && !params.is_empty() {
            url.query_pairs_mut().extend_pairs(params.iter());
        }
        let mut req = self
            .http
            .request(method.clone(), url)
            .header(reqwest::header::AUTHORIZATION, self.token.header_value()?);
        if !body_in_query {
            let body = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(params.iter())
                .finish();
            req = req
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .header(reqwest::header::CONTENT_LENGTH, body.len())
                .body(body);
        }
        let resp = req.send().await.map_err(|e| Error::Transport {
            method: method.to_string(),
            path: path.clone(),
            detail: error_chain(&e),
            connect: e.is_connect(),
        })?;
        let status = resp.status();
        let reason = resp
            .extensions()
            .get::<hyper::ext::ReasonPhrase>()
            .and_then(|r| std::str::from_utf8(r.as_bytes()).ok().map(str::to_string))
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("").to_string());
        let bytes = resp.bytes().await.map_err(|e| Error::Transport {
            method: method.to_string(),
            path: path.clone(),
            detail: error_chain(&e),
            connect: false,
        })?;
        if status.is_success() {
            let env: Envelope<T> = serde_json::from_slice(&bytes).map_err(|e| Error::Decode {
                method: method.to_string(),
                path: path.clone(),
                detail: format!("{e} in {}", snippet(&bytes)),
            })?;
            return Ok(env.data);
        }
        Err(http_error(status, &reason, &bytes, method.as_str(), &path))
    }
}

/// Whether a request may be resent after an unclear failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Safety {
    /// Resending has the same effect (GET, PUT config with a digest, DELETE of a task).
    Idempotent,
    /// Resend only when the first attempt certainly did nothing.
    Once,
}

#[derive(serde::Deserialize)]
struct Envelope<T> {
    data: T,
}

#[derive(serde::Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    errors: Option<std::collections::BTreeMap<String, serde_json::Value>>,
}

fn http_error(status: StatusCode, reason: &str, body: &[u8], method: &str, path: &str) -> Error {
    let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    // Older PVE 8 servers only send the reason phrase; newer ones the full message in the body.
    let message = parsed
        .message
        .map(|m| m.trim_end().to_string())
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| reason.to_string());
    let (method, path) = (method.to_string(), path.to_string());
    match status.as_u16() {
        401 => Error::Unauthorized {
            method,
            path,
            reason: reason.to_string(),
        },
        403 => Error::Forbidden {
            method,
            path,
            message,
        },
        400 => Error::BadRequest {
            method,
            path,
            message,
            errors: parsed
                .errors
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| {
                    (
                        k,
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect(),
        },
        code => Error::Api {
            status: code,
            method,
            path,
            message,
        },
    }
}

fn parse_endpoint(endpoint: &str) -> Result<Url> {
    let bad = |reason: &str| Error::InvalidEndpoint {
        endpoint: endpoint.to_string(),
        reason: reason.to_string(),
    };
    let mut url = Url::parse(endpoint.trim()).map_err(|e| bad(&e.to_string()))?;
    if url.scheme() != "https" {
        return Err(bad("the Proxmox API is only served over https"));
    }
    if url.host_str().is_none() {
        return Err(bad("no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("no query or fragment allowed"));
    }
    let path = url.path().trim_end_matches('/').to_string();
    let path = path.strip_suffix("/api2/json").unwrap_or(&path).to_string();
    if !path.is_empty() {
        return Err(bad(
            "give only scheme, host and port (the client adds /api2/json)",
        ));
    }
    url.set_path("/api2/json");
    Ok(url)
}

fn display_path(segments: &[&str]) -> String {
    format!("/{}", segments.join("/"))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let cut: String = text.chars().take(200).collect();
    format!("'{cut}'")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_normalised_to_api2_json() {
        for e in [
            "https://pve:8006",
            "https://pve:8006/",
            "https://pve:8006/api2/json",
            "https://pve:8006/api2/json/",
        ] {
            assert_eq!(
                parse_endpoint(e).expect(e).as_str(),
                "https://pve:8006/api2/json"
            );
        }
        assert!(parse_endpoint("http://pve:8006").is_err());
        assert!(parse_endpoint("https://pve:8006/other").is_err());
        assert!(parse_endpoint("pve:8006").is_err());
    }

    #[test]
    fn error_bodies_and_reason_phrases_map_to_typed_errors() {
        let body = br#"{"data":null,"errors":{"vmid":"value must have a minimum value of 100"},"message":"Parameter verification failed.\n"}"#;
        match http_error(
            StatusCode::BAD_REQUEST,
            "Parameter verification failed.",
            body,
            "POST",
            "/nodes/pve/qemu",
        ) {
            Error::BadRequest {
                errors, message, ..
            } => {
                assert_eq!(message, "Parameter verification failed.");
                assert_eq!(errors["vmid"], "value must have a minimum value of 100");
            }
            other => panic!("unexpected {other:?}"),
        }
        // A pre-5.2 server: message only in the reason phrase.
        match http_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "VM 9001 is not running",
            b"",
            "GET",
            "/x",
        ) {
            Error::Api {
                status: 500,
                message,
                ..
            } => assert_eq!(message, "VM 9001 is not running"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn retry_delays_double_up_to_the_cap() {
        let p = RetryPolicy {
            attempts: 5,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(300),
        };
        assert_eq!(p.delay(0), Duration::from_millis(100));
        assert_eq!(p.delay(1), Duration::from_millis(200));
        assert_eq!(p.delay(2), Duration::from_millis(300));
    }
}
