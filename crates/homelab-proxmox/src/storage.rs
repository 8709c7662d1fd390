//! Storage calls: list storages and their content, and have the node download an image from a URL
//! (skipping it when the volume is already there).

use reqwest::Method;

use crate::client::{Client, Safety};
use crate::error::Result;
use crate::task::{Upid, WaitOptions};
use crate::types::{StorageInfo, StorageVolume};

/// A `download-url` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadRequest {
    pub url: String,
    /// `iso`, `vztmpl` or `import`.
    pub content: String,
    /// The target file name (for `iso` it must end in `.iso` or `.img`).
    pub filename: String,
    /// `(algorithm, hex digest)`, e.g. `("sha256", "…")`. With it, a re-run is harmless.
    pub checksum: Option<(String, String)>,
    pub verify_certificates: bool,
}

/// What [`Client::ensure_downloaded`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownloadOutcome {
    /// The volume was there already; nothing was downloaded.
    AlreadyPresent { volid: String },
    /// The node downloaded it.
    Downloaded { volid: String, upid: String },
}

impl Client {
    /// `GET /nodes/{node}/storage`, optionally only storages that accept `content`.
    pub async fn storages(&self, node: &str, content: Option<&str>) -> Result<Vec<StorageInfo>> {
        let query = content
            .map(|c| vec![("content".to_string(), c.to_string())])
            .unwrap_or_default();
        self.get(&["nodes", node, "storage"], query).await
    }

    /// `GET /nodes/{node}/storage/{storage}/content`, optionally filtered by content type.
    pub async fn storage_content(
        &self,
        node: &str,
        storage: &str,
        content: Option<&str>,
    ) -> Result<Vec<StorageVolume>> {
        let query = content
            .map(|c| vec![("content".to_string(), c.to_string())])
            .unwrap_or_default();
        self.get(&["nodes", node, "storage", storage, "content"], query)
            .await
    }

    /// `POST /nodes/{node}/storage/{storage}/download-url`: starts a `download` task.
    pub async fn download_url(
        &self,
        node: &str,
        storage: &str,
        req: &DownloadRequest,
    ) -> Result<Upid> {
        let mut params = vec![
            ("url".to_string(), req.url.clone()),
            ("content".to_string(), req.content.clone()),
            ("filename".to_string(), req.filename.clone()),
        ];
        if let Some((algo, sum)) = &req.checksum {
            params.push(("checksum-algorithm".into(), algo.clone()));
            params.push(("checksum".into(), sum.clone()));
        }
        if !req.verify_certificates {
            params.push(("verify-certificates".into(), "0".into()));
        }
        let upid: String = self
            .call(
                Method::POST,
                &["nodes", node, "storage", storage, "download-url"],
                params,
                Safety::Once,
            )
            .await?;
        Upid::parse(&upid)
    }

    /// Downloads `req` into `storage` unless `STORAGE:CONTENT/FILENAME` is listed already; waits for the task.
    pub async fn ensure_downloaded(
        &self,
        node: &str,
        storage: &str,
        req: &DownloadRequest,
        wait: &WaitOptions,
    ) -> Result<DownloadOutcome> {
        let volid = format!("{storage}:{}/{}", req.content, req.filename);
        if self
            .storage_content(node, storage, Some(&req.content))
            .await?
            .iter()
            .any(|v| v.volid == volid)
        {
            return Ok(DownloadOutcome::AlreadyPresent { volid });
        }
        let upid = self.download_url(node, storage, req).await?;
        self.wait_task(&upid, wait).await?;
        Ok(DownloadOutcome::Downloaded {
            volid,
            upid: upid.to_string(),
        })
    }

    /// `DELETE /nodes/{node}/storage/{storage}/content/{volume}`; returns the task if one was started.
    pub async fn delete_volume(
        &self,
        node: &str,
        storage: &str,
        volume: &str,
    ) -> Result<Option<Upid>> {
        let upid: Option<String> = self
            .call(
                Method::DELETE,
                &["nodes", node, "storage", storage, "content", volume],
                vec![],
                Safety::Once,
            )
            .await?;
        upid.map(|u| Upid::parse(&u)).transpose()
    }
}
