//! `download-url`: the synchronous checks (file-based storage, content type, file name, checksum pairing)
//! and the `download` task, which fetches over plain HTTP from a loopback URL, verifies the checksum and
//! refuses to overwrite an existing file unless a matching checksum was given.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;
use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};

use super::api::{ApiError, ApiResult, Caller, Reply};
use super::state::{Shared, Volume, now_epoch, work};

/// PVE's file name normalisation: path stripped, characters outside `[a-zA-Z0-9_.-]` become `_`.
pub(crate) fn normalise_filename(name: &str) -> String {
    let base = name.rsplit('/').next().unwrap_or(name);
    base.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn digest_hex(algo: &str, data: &[u8]) -> Option<String> {
    Some(match algo {
        "sha224" => hex::encode(Sha224::digest(data)),
        "sha256" => hex::encode(Sha256::digest(data)),
        "sha384" => hex::encode(Sha384::digest(data)),
        "sha512" => hex::encode(Sha512::digest(data)),
        _ => return None,
    })
}

/// Only plain HTTP to 127.0.0.0/8 or localhost: the simulator never sends a packet elsewhere.
fn loopback_http(url: &str) -> Result<reqwest::Url, String> {
    let u = reqwest::Url::parse(url).map_err(|e| format!("invalid URL '{url}': {e}"))?;
    let host = u.host_str().unwrap_or("");
    let loopback = host == "localhost"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback());
    if u.scheme() != "http" || !loopback {
        return Err(format!(
            "the simulator only downloads over plain http from 127.0.0.0/8, not '{url}'"
        ));
    }
    Ok(u)
}

pub(crate) fn start(
    shared: &Arc<Shared>,
    params: &BTreeMap<String, String>,
    caller: &Caller,
) -> ApiResult {
    let get = |k: &str| params.get(k).cloned().unwrap_or_default();
    let (storage_id, content, url) = (get("storage"), get("content"), get("url"));
    let filename = normalise_filename(&get("filename"));
    let lower = filename.to_ascii_lowercase();
    if content == "iso" && !(lower.ends_with(".iso") || lower.ends_with(".img")) {
        return Err(ApiError::param("filename", "wrong file extension"));
    }
    if content == "vztmpl"
        && !(lower.ends_with(".tar.gz")
            || lower.ends_with(".tar.xz")
            || lower.ends_with(".tar.zst"))
    {
        return Err(ApiError::param("filename", "wrong file extension"));
    }
    let checksum = params.get("checksum").cloned();
    let algo = params.get("checksum-algorithm").cloned();
    match (&checksum, &algo) {
        (Some(_), None) => {
            return Err(ApiError::param(
                "checksum-algorithm",
                "missing checksum-algorithm for checksum",
            ));
        }
        (None, Some(_)) => {
            return Err(ApiError::param(
                "checksum",
                "missing checksum for checksum-algorithm",
            ));
        }
        _ => {}
    }
    let mut w = shared.world();
    let node = get("node");
    // The storage as the node sees it: a shared one is the same everywhere, a local one is the node's own.
    let key = w
        .storage_key(&node, &storage_id)
        .ok_or_else(|| ApiError::die(format!("storage '{storage_id}' does not exist")))?;
    let storage = w
        .storages
        .get(&key)
        .ok_or_else(|| ApiError::die(format!("storage '{storage_id}' does not exist")))?;
    if !storage.file_based {
        return Err(ApiError::die(format!(
            "can't upload to storage type '{}', not a file based storage!",
            storage.kind
        )));
    }
    if !storage.content.contains(&content) {
        return Err(ApiError::die(format!(
            "storage '{storage_id}' is not configured for content-type '{content}'"
        )));
    }
    let dir = if content == "iso" {
        "template/iso"
    } else {
        "template/cache"
    };
    let path = format!("{}/{dir}/{filename}", storage.path);
    let volname = format!("{content}/{filename}");
    let counted = if storage.shared {
        storage_id.clone()
    } else {
        format!("{node}/{storage_id}")
    };
    let upid = w.new_task_on(&node, "download", &filename, &caller.full());
    w.downloads.push(counted);
    let injected = w.faults.take_task_failure("download");
    drop(w);
    let shared2 = shared.clone();
    let task = upid.clone();
    tokio::spawn(async move {
        let result = run(
            &shared2,
            &task,
            &key,
            &volname,
            &path,
            &url,
            checksum.zip(algo),
            injected,
        )
        .await;
        shared2.world().finish_task(&task, result.map(|()| 0));
    });
    Ok(Reply::data(json!(upid)))
}

#[allow(clippy::too_many_arguments)]
async fn run(
    shared: &Arc<Shared>,
    task: &str,
    storage: &str,
    volname: &str,
    path: &str,
    url: &str,
    checksum: Option<(String, String)>,
    injected: Option<String>,
) -> Result<(), String> {
    let log = |line: String| shared.world().task_log(task, line);
    work(shared.timing.task_duration / 2).await;
    if let Some(msg) = injected {
        return Err(msg);
    }
    let existing = shared
        .world()
        .storages
        .get(storage)
        .and_then(|s| s.volumes.get(volname).cloned());
    if let Some(existing) = existing {
        let Some((sum, algo)) = &checksum else {
            return Err(format!("refusing to override existing file '{path}'"));
        };
        let data = existing.data.unwrap_or_default();
        let got = digest_hex(algo, &data).ok_or_else(|| {
            format!("checksum algorithm '{algo}' is not supported by the simulator")
        })?;
        if got.eq_ignore_ascii_case(sum) {
            log("OK, got correct file already, no need to download".into());
            return Ok(());
        }
        return Err(format!(
            "checksum mismatch: got '{got}' != expect '{sum}', aborting"
        ));
    }
    log(format!("downloading {url} to {path}"));
    let target = loopback_http(url)?;
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(plain_tls_config()?)
        .timeout(std::time::Duration::from_secs(120))
        .build()
        .map_err(|e| format!("download failed: {e}"))?;
    let resp = client
        .get(target)
        .send()
        .await
        .map_err(|e| format!("download failed: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!(
            "download failed: server answered {}",
            resp.status()
        ));
    }
    let data = resp
        .bytes()
        .await
        .map_err(|e| format!("download failed: {e}"))?
        .to_vec();
    log(format!("download finished: {} bytes", data.len()));
    if let Some((sum, algo)) = &checksum {
        let got = digest_hex(algo, &data).ok_or_else(|| {
            format!("checksum algorithm '{algo}' is not supported by the simulator")
        })?;
        if !got.eq_ignore_ascii_case(sum) {
            return Err(format!("checksum mismatch: got '{got}' != expect '{sum}'"));
        }
        log("calculating checksum...OK, checksum verified".into());
    }
    let mut w = shared.world();
    let s = w
        .storages
        .get_mut(storage)
        .ok_or_else(|| format!("storage '{storage}' vanished"))?;
    let content = volname.split('/').next().unwrap_or("iso").to_string();
    let format = if content == "iso" { "iso" } else { "tgz" };
    s.volumes.insert(
        volname.to_string(),
        Volume {
            content,
            size: data.len() as u64,
            format: format.into(),
            ctime: now_epoch(),
            vmid: None,
            data: Some(Arc::new(data)),
        },
    );
    w.task_log(task, format!("download of '{url}' to '{path}' finished"));
    Ok(())
}

fn plain_tls_config() -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_are_normalised_like_pve() {
        assert_eq!(normalise_filename("../a b/talos v1.iso"), "talos_v1.iso");
    }

    #[test]
    fn only_loopback_http_is_fetched() {
        assert!(loopback_http("http://127.0.0.1:8080/x.iso").is_ok());
        assert!(loopback_http("http://127.5.6.7/x.iso").is_ok());
        assert!(loopback_http("https://127.0.0.1/x.iso").is_err());
        assert!(loopback_http("http://192.168.1.1/x.iso").is_err());
        assert!(loopback_http("http://factory.talos.dev/x.iso").is_err());
    }
}
