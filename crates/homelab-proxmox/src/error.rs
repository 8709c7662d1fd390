//! The client's error type: what failed (method, path, UPID, file), PVE's own message, and a hint on what to do.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong talking to Proxmox VE.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configured endpoint is not a usable `https://` URL.
    #[error(
        "invalid Proxmox endpoint '{endpoint}': {reason} (expected e.g. https://pve.example:8006)"
    )]
    InvalidEndpoint { endpoint: String, reason: String },

    /// The API token id does not look like `USER@REALM!TOKENID`.
    #[error(
        "invalid API token id '{token_id}': expected USER@REALM!TOKENID, e.g. homelab@pve!homelabctl"
    )]
    InvalidTokenId { token_id: String },

    /// The CA file could not be read or holds no certificate.
    #[error(
        "cannot use CA file {path}: {reason} (give the PEM of the cluster CA, /etc/pve/pve-root-ca.pem)"
    )]
    CaFile { path: PathBuf, reason: String },

    /// The fingerprint pin is not 32 colon-separated hex bytes.
    #[error(
        "invalid certificate fingerprint '{value}': expected the SHA-256 form `GET /nodes` reports as ssl_fingerprint (32 colon-separated hex bytes)"
    )]
    Fingerprint { value: String },

    /// Building the TLS configuration failed.
    #[error("TLS setup failed: {0}")]
    Tls(String),

    /// The request never got an HTTP answer (connect, TLS, reset, timeout).
    #[error(
        "cannot reach Proxmox for {method} {path}: {detail} (check the endpoint, that pveproxy runs, and the TLS settings: CA file or fingerprint)"
    )]
    Transport {
        method: String,
        path: String,
        detail: String,
        connect: bool,
    },

    /// HTTP 401: the token is unknown, expired or its secret is wrong.
    #[error(
        "Proxmox rejected the API token for {method} {path} (401 {reason}); check the token id and secret, and that the token has not expired"
    )]
    Unauthorized {
        method: String,
        path: String,
        reason: String,
    },

    /// HTTP 403: the token lacks a privilege.
    #[error(
        "permission denied for {method} {path}: {message}; grant that privilege to the token (and its user, for privilege-separated tokens)"
    )]
    Forbidden {
        method: String,
        path: String,
        message: String,
    },

    /// HTTP 400: parameter verification failed; `errors` maps each parameter to PVE's text.
    #[error("Proxmox rejected the parameters of {method} {path}: {message}{}", render_param_errors(.errors))]
    BadRequest {
        method: String,
        path: String,
        message: String,
        errors: BTreeMap<String, String>,
    },

    /// Any other HTTP error (usually 500 with the handler's message).
    #[error("{method} {path} failed ({status}): {message}")]
    Api {
        status: u16,
        method: String,
        path: String,
        message: String,
    },

    /// A 2xx answer whose body did not have the expected shape.
    #[error("unexpected response to {method} {path}: {detail}")]
    Decode {
        method: String,
        path: String,
        detail: String,
    },

    /// A UPID string that does not parse.
    #[error("invalid UPID '{0}': expected UPID:node:pid:pstart:starttime:type:id:user:")]
    InvalidUpid(String),

    /// A task ended with an error; `log` holds the tail of its log.
    #[error("task {upid} failed: {exitstatus}{}", render_log(.log))]
    TaskFailed {
        upid: String,
        exitstatus: String,
        log: Vec<String>,
    },

    /// A task did not end in time (it may still be running on the node).
    #[error(
        "task {upid} did not finish within {timeout:?}; look at it in the Proxmox task list, or raise the timeout"
    )]
    TaskTimeout { upid: String, timeout: Duration },

    /// The VM to create exists already; homelabctl never re-creates blindly.
    #[error(
        "VM {vmid} already exists on node '{node}'; pick another vmid or adopt the existing VM"
    )]
    VmExists { node: String, vmid: u32 },

    /// A VM is locked and no running task holds the lock: the worker that set it died (a killed pvedaemon,
    /// a node crash) and the lock stays until someone removes it.
    #[error(
        "VM {vmid} on node '{node}' is locked ({lock}) but no running task holds the lock; it was left by a task that died. If the VM is half-made, remove it; otherwise run `qm unlock {vmid}` on {node}, then try again"
    )]
    StaleLock {
        node: String,
        vmid: u32,
        lock: String,
    },

    /// A VM stayed locked longer than allowed.
    #[error(
        "VM {vmid} is still locked ({lock}) after {timeout:?}; a task may be stuck: check the task list, or `qm unlock {vmid}`"
    )]
    LockTimeout {
        vmid: u32,
        lock: String,
        timeout: Duration,
    },

    /// The guest agent never reported an address for the NIC.
    #[error(
        "the guest agent of VM {vmid} did not report an IPv4 address for MAC {mac} within {timeout:?} (last: {last}); is the qemu-guest-agent extension in the image?"
    )]
    AgentTimeout {
        vmid: u32,
        mac: String,
        timeout: Duration,
        last: String,
    },
}

fn render_param_errors(errors: &BTreeMap<String, String>) -> String {
    errors
        .iter()
        .map(|(param, text)| format!("\n  {param}: {}", text.trim_end().replace('\n', "; ")))
        .collect()
}

fn render_log(log: &[String]) -> String {
    if log.is_empty() {
        return String::new();
    }
    let lines: String = log.iter().map(|l| format!("\n  | {l}")).collect();
    format!("\n  task log (tail):{lines}")
}

/// What kind of failure an [`Error`] is, for callers that branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The object (VM, config, volume, task) does not exist.
    NotFound,
    /// The object exists already.
    AlreadyExists,
    /// A lock was held (config flock timeout or a `lock:` property).
    Locked,
    /// The guest agent is not (yet) answering.
    AgentNotReady,
    /// A fault worth retrying: connection trouble, 5xx from a proxy, a lock timeout.
    Transient,
    /// Authentication or permission.
    Auth,
    /// Anything else: a definite answer that retrying will not change.
    Other,
}

impl Error {
    /// Classifies the error the way bpg and PVE's own tools do (message texts, status codes).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Transport { .. } => ErrorKind::Transient,
            Error::Unauthorized { .. } | Error::Forbidden { .. } => ErrorKind::Auth,
            Error::VmExists { .. } => ErrorKind::AlreadyExists,
            Error::Api {
                status, message, ..
            } => classify_message(*status, message),
            // A worker refused a locked VM or timed out on its config flock: the lock is held by
            // another task, which ends.
            Error::TaskFailed { exitstatus, .. } => {
                if is_lock_message(exitstatus) {
                    ErrorKind::Locked
                } else {
                    ErrorKind::Other
                }
            }
            Error::LockTimeout { .. } | Error::StaleLock { .. } => ErrorKind::Locked,
            Error::BadRequest {
                message, errors, ..
            } => {
                let all = errors
                    .values()
                    .cloned()
                    .chain([message.clone()])
                    .collect::<Vec<_>>()
                    .join(" ");
                if all.contains("already exists") {
                    ErrorKind::AlreadyExists
                } else if all.contains("no such task") {
                    ErrorKind::NotFound
                } else {
                    ErrorKind::Other
                }
            }
            _ => ErrorKind::Other,
        }
    }

    /// True when retrying the same request may succeed.
    pub fn is_transient(&self) -> bool {
        self.kind() == ErrorKind::Transient
    }

    /// True when the request certainly did not reach the server (safe to resend even a POST).
    pub(crate) fn never_reached_server(&self) -> bool {
        match self {
            Error::Transport { connect, .. } => *connect,
            // A config-lock timeout is raised before any work is done; 595/596 are pveproxy failing to
            // connect (or to do TLS) to the node it forwards to, before the request is sent.
            Error::Api {
                message, status, ..
            } => message.contains("can't lock file") || matches!(status, 595 | 596),
            _ => false,
        }
    }
}

/// `check_lock`'s "VM is locked (create)" and `lock_file_full`'s "can't lock file '…' - got timeout".
fn is_lock_message(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    lower.contains("is locked (") || lower.contains("can't lock file")
}

fn classify_message(status: u16, message: &str) -> ErrorKind {
    let lower = message.to_ascii_lowercase();
    if status == 404
        || lower.contains("does not exist")
        || lower.contains("no such resource")
        || lower.contains("no such file or directory")
    {
        ErrorKind::NotFound
    } else if lower.contains("already exists") {
        ErrorKind::AlreadyExists
    } else if lower.contains("guest agent")
        && (lower.contains("not running")
            || lower.contains("not available")
            || lower.contains("not ready"))
    {
        ErrorKind::AgentNotReady
    } else if lower.contains("got timeout") || lower.contains("can't lock file") {
        ErrorKind::Transient
    } else if lower.contains("is locked") {
        ErrorKind::Locked
    } else if matches!(status, 502..=504 | 595 | 596 | 599) {
        ErrorKind::Transient
    } else {
        ErrorKind::Other
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, message: &str) -> Error {
        Error::Api {
            status,
            method: "GET".into(),
            path: "/x".into(),
            message: message.into(),
        }
    }

    #[test]
    fn messages_map_to_kinds_like_pve_tools_do() {
        assert_eq!(
            api(
                500,
                "Configuration file 'nodes/pve1/qemu-server/9001.conf' does not exist"
            )
            .kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            api(
                500,
                "unable to create VM 9001 - VM 9001 already exists on node 'pve1'"
            )
            .kind(),
            ErrorKind::AlreadyExists
        );
        assert_eq!(
            api(500, "QEMU guest agent is not running").kind(),
            ErrorKind::AgentNotReady
        );
        assert_eq!(
            api(
                500,
                "can't lock file '/var/lock/qemu-server/lock-9001.conf' - got timeout"
            )
            .kind(),
            ErrorKind::Transient
        );
        assert_eq!(api(500, "VM is locked (create)").kind(), ErrorKind::Locked);
        assert_eq!(
            api(596, "certificate verify failed").kind(),
            ErrorKind::Transient
        );
        assert_eq!(
            api(599, "Connection timed out").kind(),
            ErrorKind::Transient
        );
        let failed = |status: &str| Error::TaskFailed {
            upid: "UPID:pve:0001E240:05E30A78:69559A00:qmstart:100:a@pve!t:".into(),
            exitstatus: status.into(),
            log: vec![],
        };
        assert_eq!(failed("VM is locked (create)").kind(), ErrorKind::Locked);
        assert_eq!(
            failed("can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout").kind(),
            ErrorKind::Locked
        );
        assert_eq!(failed("VM 100 already running").kind(), ErrorKind::Other);
        assert_eq!(api(503, "Service Unavailable").kind(), ErrorKind::Transient);
        assert_eq!(
            api(500, "VM 9001 is running - destroy failed").kind(),
            ErrorKind::Other
        );
    }

    #[test]
    fn bad_request_lists_every_parameter_error() {
        let err = Error::BadRequest {
            method: "POST".into(),
            path: "/nodes/pve1/qemu".into(),
            message: "Parameter verification failed.".into(),
            errors: BTreeMap::from([(
                "vmid".to_string(),
                "value must have a minimum value of 100".to_string(),
            )]),
        };
        let text = err.to_string();
        assert!(
            text.contains("vmid: value must have a minimum value of 100"),
            "{text}"
        );
    }
}
