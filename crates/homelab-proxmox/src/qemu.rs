//! QEMU VM calls: create (never blindly re-sent), config get/set, status, start/shutdown/stop, delete, and
//! waiting for a config lock to clear.

use std::time::{Duration, Instant};

use reqwest::Method;

use crate::client::{Client, Safety};
use crate::error::{Error, ErrorKind, Result};
use crate::events::ClientEvent;
use crate::task::{Upid, WaitOptions};
use crate::types::{LockHolder, VmConfig, VmListEntry, VmStatus};
use crate::vmspec::VmSpec;

/// What [`Client::create_vm`] observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub vmid: u32,
    /// The `qmcreate` task, when the answer carrying it arrived (it is lost when the connection broke after
    /// the server accepted the request; the VM is then found by its id).
    pub upid: Option<String>,
}

impl Client {
    /// `GET /nodes/{node}/qemu`.
    pub async fn list_vms(&self, node: &str) -> Result<Vec<VmListEntry>> {
        self.get(&["nodes", node, "qemu"], vec![]).await
    }

    /// `GET /nodes/{node}/qemu/{vmid}/config`.
    pub async fn vm_config(&self, node: &str, vmid: u32) -> Result<VmConfig> {
        self.get(
            &["nodes", node, "qemu", &vmid.to_string(), "config"],
            vec![],
        )
        .await
    }

    /// `PUT /nodes/{node}/qemu/{vmid}/config` (synchronous). Pass the `digest` read with the config to refuse
    /// the change if someone else changed the VM meanwhile.
    pub async fn set_vm_config(
        &self,
        node: &str,
        vmid: u32,
        params: &[(String, String)],
        digest: Option<&str>,
    ) -> Result<()> {
        let mut params = params.to_vec();
        if let Some(d) = digest {
            params.push(("digest".into(), d.to_string()));
        }
        let _: serde_json::Value = self
            .call(
                Method::PUT,
                &["nodes", node, "qemu", &vmid.to_string(), "config"],
                params,
                Safety::Idempotent,
            )
            .await?;
        Ok(())
    }

    /// `GET /nodes/{node}/qemu/{vmid}/status/current`.
    pub async fn vm_status(&self, node: &str, vmid: u32) -> Result<VmStatus> {
        self.get(
            &[
                "nodes",
                node,
                "qemu",
                &vmid.to_string(),
                "status",
                "current",
            ],
            vec![],
        )
        .await
    }

    /// Whether VM `vmid` exists on `node`.
    pub async fn vm_exists(&self, node: &str, vmid: u32) -> Result<bool> {
        match self.vm_status(node, vmid).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `POST /nodes/{node}/qemu` with raw form parameters; returns the `qmcreate` task. Not retried unless the
    /// request certainly did not arrive. Prefer [`Client::create_vm`].
    pub async fn create_vm_raw(&self, node: &str, params: &[(String, String)]) -> Result<Upid> {
        let upid: String = self
            .call(
                Method::POST,
                &["nodes", node, "qemu"],
                params.to_vec(),
                Safety::Once,
            )
            .await?;
        Upid::parse(&upid)
    }

    /// Creates the VM and waits for the `qmcreate` task. Refuses when the VMID exists already
    /// ([`Error::VmExists`]). When an attempt fails transiently (reset, 5xx, lock timeout), it looks whether
    /// the VM appeared before sending again, so it never makes a second create for one that landed.
    pub async fn create_vm(
        &self,
        node: &str,
        spec: &VmSpec,
        wait: &WaitOptions,
    ) -> Result<Created> {
        if self.vm_exists(node, spec.vmid).await? {
            return Err(Error::VmExists {
                node: node.to_string(),
                vmid: spec.vmid,
            });
        }
        let params = spec.to_create_params();
        let policy = self.retry_policy().clone();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent: Result<String> = self
                .send_once(Method::POST, &["nodes", node, "qemu"], &params.clone())
                .await;
            match sent {
                Ok(raw) => {
                    let upid = Upid::parse(&raw)?;
                    self.wait_task(&upid, wait).await?;
                    return Ok(Created {
                        vmid: spec.vmid,
                        upid: Some(upid.to_string()),
                    });
                }
                Err(e)
                    if e.is_transient()
                        || (attempt > 1 && e.kind() == ErrorKind::AlreadyExists) =>
                {
                    // Did an earlier attempt land? Then wait for its task via the config lock.
                    if self.vm_exists(node, spec.vmid).await? {
                        self.wait_unlocked(node, spec.vmid, wait.timeout).await?;
                        return Ok(Created {
                            vmid: spec.vmid,
                            upid: None,
                        });
                    }
                    if attempt >= policy.attempts {
                        return Err(e);
                    }
                    let delay = policy.delay(attempt - 1);
                    self.events().emit(&ClientEvent::Retrying {
                        method: "POST".into(),
                        path: format!("/nodes/{node}/qemu"),
                        attempt: attempt + 1,
                        of: policy.attempts,
                        delay,
                        reason: e.to_string(),
                    });
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The VM's `lock` and the running task that holds it (`None` when the VM is not locked). A lock is
    /// matched to the running task on the VM whose type sets it (`create` → `qmcreate`, …), else to any
    /// running task on the VM; with none, [`LockHolder::task`] is `None`: the lock is stale.
    pub async fn lock_holder(&self, node: &str, vmid: u32) -> Result<Option<LockHolder>> {
        let status = self.vm_status(node, vmid).await?;
        let Some(lock) = status.lock.filter(|l| !l.is_empty()) else {
            return Ok(None);
        };
        let tasks = self.running_tasks(node, Some(vmid)).await?;
        let kinds = lock_task_kinds(&lock);
        let task = tasks
            .iter()
            .find(|t| kinds.contains(&t.kind.as_str()))
            .or_else(|| tasks.first())
            .map(|t| t.upid.clone());
        Ok(Some(LockHolder { lock, task }))
    }

    /// Waits until the VM has no `lock`: for the task holding it to end (whatever its outcome), then reads
    /// the VM again. A VM that is gone is unlocked. Fails with [`Error::StaleLock`] when the VM stays locked
    /// with no running task to hold it, and with [`Error::LockTimeout`] after `timeout`.
    pub async fn wait_unlocked(&self, node: &str, vmid: u32, timeout: Duration) -> Result<()> {
        let started = Instant::now();
        let mut interval = Duration::from_millis(200);
        let mut holderless = 0;
        loop {
            let holder = match self.lock_holder(node, vmid).await {
                Ok(None) => return Ok(()),
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
                Ok(Some(h)) => h,
            };
            if started.elapsed() >= timeout {
                return Err(Error::LockTimeout {
                    vmid,
                    lock: holder.lock,
                    timeout,
                });
            }
            self.events().emit(&ClientEvent::Waiting {
                what: format!("VM {vmid} lock"),
                elapsed: started.elapsed(),
                timeout,
                last: match &holder.task {
                    Some(t) => format!("locked ({}) by task {t}", holder.lock),
                    None => format!("locked ({}), no task holds it", holder.lock),
                },
            });
            match holder.task.as_deref().map(Upid::parse) {
                Some(Ok(upid)) => {
                    holderless = 0;
                    let wait = WaitOptions::with_timeout(timeout.saturating_sub(started.elapsed()));
                    match self.wait_task(&upid, &wait).await {
                        // The holder's own failure is its business (a failed create removes the VM).
                        Ok(_) | Err(Error::TaskFailed { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
                Some(Err(e)) => return Err(e),
                None => {
                    // A task that just ended has cleared its lock by the next read; a lock that outlives
                    // two looks with no task behind it was left by a worker that died.
                    holderless += 1;
                    if holderless >= 2 {
                        return Err(Error::StaleLock {
                            node: node.to_string(),
                            vmid,
                            lock: holder.lock,
                        });
                    }
                    tokio::time::sleep(interval).await;
                    interval = (interval * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// Runs a power or destroy `op` (which waits for its task), and when PVE refused it because the VM is
    /// locked ("VM is locked (create)", a config-flock timeout), waits for the lock to clear and runs it
    /// again, a few times at most.
    async fn when_unlocked<T, F, Fut>(
        &self,
        node: &str,
        vmid: u32,
        wait: &WaitOptions,
        mut op: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        const ATTEMPTS: u32 = 4;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match op().await {
                Err(e) if e.kind() == ErrorKind::Locked && attempt < ATTEMPTS => {
                    self.events().emit(&ClientEvent::Waiting {
                        what: format!("VM {vmid} lock"),
                        elapsed: Duration::ZERO,
                        timeout: wait.timeout,
                        last: e.to_string(),
                    });
                    self.wait_unlocked(node, vmid, wait.timeout).await?;
                }
                other => return other,
            }
        }
    }

    async fn power(
        &self,
        node: &str,
        vmid: u32,
        action: &str,
        params: Vec<(String, String)>,
    ) -> Result<Upid> {
        let upid: String = self
            .call(
                Method::POST,
                &["nodes", node, "qemu", &vmid.to_string(), "status", action],
                params,
                Safety::Once,
            )
            .await?;
        Upid::parse(&upid)
    }

    /// `POST …/status/start`: starts a `qmstart` task.
    pub async fn start_vm(&self, node: &str, vmid: u32) -> Result<Upid> {
        self.power(node, vmid, "start", vec![]).await
    }

    /// `POST …/status/shutdown`: a clean shutdown (guest agent or ACPI), optionally forcing a stop at timeout.
    pub async fn shutdown_vm(
        &self,
        node: &str,
        vmid: u32,
        timeout: Option<Duration>,
        force_stop: bool,
    ) -> Result<Upid> {
        let mut params = Vec::new();
        if let Some(t) = timeout {
            params.push(("timeout".into(), t.as_secs().to_string()));
        }
        if force_stop {
            params.push(("forceStop".into(), "1".into()));
        }
        self.power(node, vmid, "shutdown", params).await
    }

    /// `POST …/status/stop`: a hard stop.
    pub async fn stop_vm(&self, node: &str, vmid: u32) -> Result<Upid> {
        self.power(node, vmid, "stop", vec![]).await
    }

    /// `DELETE /nodes/{node}/qemu/{vmid}` (refused by PVE while the VM runs).
    pub async fn delete_vm(
        &self,
        node: &str,
        vmid: u32,
        purge: bool,
        destroy_unreferenced_disks: bool,
    ) -> Result<Upid> {
        let mut params = Vec::new();
        if purge {
            params.push(("purge".into(), "1".into()));
        }
        if destroy_unreferenced_disks {
            params.push(("destroy-unreferenced-disks".into(), "1".into()));
        }
        let upid: String = self
            .call(
                Method::DELETE,
                &["nodes", node, "qemu", &vmid.to_string()],
                params,
                Safety::Once,
            )
            .await?;
        Upid::parse(&upid)
    }

    /// Starts the VM unless it runs already, and waits for the task ("already running" counts as done). A VM
    /// under a lock (a create still running) is waited for, then started.
    pub async fn ensure_started(&self, node: &str, vmid: u32, wait: &WaitOptions) -> Result<()> {
        self.when_unlocked(node, vmid, wait, || async {
            if self.vm_status(node, vmid).await?.is_running() {
                return Ok(());
            }
            let upid = self.start_vm(node, vmid).await?;
            match self.wait_task(&upid, wait).await {
                Ok(_) => Ok(()),
                Err(Error::TaskFailed { exitstatus, .. })
                    if exitstatus.contains("already running") =>
                {
                    Ok(())
                }
                Err(e) => Err(e),
            }
        })
        .await
    }

    /// Stops (hard) the VM if it runs and waits for the task; a locked VM is waited for first.
    pub async fn ensure_stopped(&self, node: &str, vmid: u32, wait: &WaitOptions) -> Result<()> {
        self.when_unlocked(node, vmid, wait, || async {
            if !self.vm_status(node, vmid).await?.is_running() {
                return Ok(());
            }
            let upid = self.stop_vm(node, vmid).await?;
            self.wait_task(&upid, wait).await.map(|_| ())
        })
        .await
    }

    /// Stops (hard) if running, then deletes with purge and unreferenced disks; a missing VM is done already,
    /// a locked one is waited for.
    pub async fn destroy_vm(&self, node: &str, vmid: u32, wait: &WaitOptions) -> Result<()> {
        self.when_unlocked(node, vmid, wait, || async {
            let status = match self.vm_status(node, vmid).await {
                Ok(s) => s,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            };
            if status.is_running() {
                let upid = self.stop_vm(node, vmid).await?;
                self.wait_task(&upid, wait).await?;
            }
            let upid = self.delete_vm(node, vmid, true, true).await?;
            self.wait_task(&upid, wait).await?;
            Ok(())
        })
        .await
    }
}

/// The task types that set a `lock` value (qemu-server, pve-guest-common).
fn lock_task_kinds(lock: &str) -> &'static [&'static str] {
    match lock {
        "create" => &["qmcreate", "qmrestore"],
        "clone" => &["qmclone"],
        "migrate" => &["qmigrate"],
        "backup" => &["vzdump"],
        "snapshot" => &["qmsnapshot"],
        "snapshot-delete" => &["qmdelsnapshot"],
        "rollback" => &["qmrollback"],
        "destroyed" => &["qmdestroy"],
        "disk" => &["qmmove", "qmresize"],
        _ => &[],
    }
}
