//! UPID tasks: parsing the UPID, polling its status on the node named inside it with backoff and a timeout,
//! reporting progress, and putting the task log tail into the error when it fails.

use std::time::{Duration, Instant};

use reqwest::Method;

use crate::client::{Client, Safety};
use crate::error::{Error, ErrorKind, Result};
use crate::events::ClientEvent;
use crate::types::{TaskListEntry, TaskLogLine, TaskStatus};

/// A parsed `UPID:node:pid:pstart:starttime:type:id:user:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upid {
    raw: String,
    pub node: String,
    pub kind: String,
    pub id: String,
    pub user: String,
}

impl Upid {
    /// Parses a UPID as PVE returns it.
    pub fn parse(raw: &str) -> Result<Self> {
        let bad = || Error::InvalidUpid(raw.to_string());
        let rest = raw.strip_prefix("UPID:").ok_or_else(bad)?;
        let fields: Vec<&str> = rest.split(':').collect();
        // node, pid, pstart, starttime, type, id, user, "" (trailing colon)
        if fields.len() != 8 || !fields[7].is_empty() {
            return Err(bad());
        }
        let hex = |s: &str, min: usize, max: usize| {
            s.len() >= min && s.len() <= max && s.chars().all(|c| c.is_ascii_hexdigit())
        };
        let node = fields[0];
        let node_ok = !node.is_empty()
            && node.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !node.starts_with('-')
            && !node.ends_with('-');
        if !node_ok
            || !hex(fields[1], 8, 8)
            || !hex(fields[2], 8, 9)
            || !hex(fields[3], 8, 8)
            || fields[4].is_empty()
        {
            return Err(bad());
        }
        Ok(Upid {
            raw: raw.to_string(),
            node: node.to_string(),
            kind: fields[4].to_string(),
            id: fields[5].to_string(),
            user: fields[6].to_string(),
        })
    }

    /// The UPID string.
    pub fn as_str(&self) -> &str {
        &self.raw
    }
}

impl std::fmt::Display for Upid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.raw)
    }
}

/// How to wait for a task.
#[derive(Debug, Clone)]
pub struct WaitOptions {
    pub timeout: Duration,
    /// First poll interval; grows by half each poll up to `max_interval`.
    pub initial_interval: Duration,
    pub max_interval: Duration,
    /// How many log lines to put into the error of a failed task.
    pub log_lines: usize,
}

impl Default for WaitOptions {
    fn default() -> Self {
        WaitOptions {
            timeout: Duration::from_secs(600),
            initial_interval: Duration::from_millis(250),
            max_interval: Duration::from_secs(2),
            log_lines: 20,
        }
    }
}

impl WaitOptions {
    /// Default intervals with this timeout.
    pub fn with_timeout(timeout: Duration) -> Self {
        WaitOptions {
            timeout,
            ..WaitOptions::default()
        }
    }

    pub(crate) fn next_interval(&self, current: Duration) -> Duration {
        (current + current / 2).min(self.max_interval)
    }
}

/// The end of a successful task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskOutcome {
    /// `OK` or `WARNINGS: N`.
    pub exitstatus: String,
    /// Log lines carrying warnings (`WARN:`), when the task ended with warnings.
    pub warnings: Vec<String>,
}

impl Client {
    /// `GET /nodes/{node}/tasks/{upid}/status` (on the node named in the UPID).
    pub async fn task_status(&self, upid: &Upid) -> Result<TaskStatus> {
        self.get(
            &["nodes", &upid.node, "tasks", upid.as_str(), "status"],
            vec![],
        )
        .await
    }

    /// `GET /nodes/{node}/tasks/{upid}/log` from line `start`, at most `limit` lines; also returns `total`.
    pub async fn task_log(&self, upid: &Upid, start: u64, limit: u64) -> Result<Vec<TaskLogLine>> {
        self.get(
            &["nodes", &upid.node, "tasks", upid.as_str(), "log"],
            vec![
                ("start".into(), start.to_string()),
                ("limit".into(), limit.to_string()),
            ],
        )
        .await
    }

    /// `GET /nodes/{node}/tasks?source=active[&vmid=…]`: the tasks running on `node`, newest first.
    pub async fn running_tasks(&self, node: &str, vmid: Option<u32>) -> Result<Vec<TaskListEntry>> {
        let mut query = vec![("source".to_string(), "active".to_string())];
        if let Some(id) = vmid {
            query.push(("vmid".into(), id.to_string()));
        }
        let tasks: Vec<TaskListEntry> = self.get(&["nodes", node, "tasks"], query).await?;
        // The active list may still carry tasks that just ended; those hold nothing any more.
        Ok(tasks
            .into_iter()
            .filter(|t| {
                t.status
                    .as_deref()
                    .is_none_or(|s| s.is_empty() || s == "running")
            })
            .collect())
    }

    /// `DELETE /nodes/{node}/tasks/{upid}`: stops a running task.
    pub async fn stop_task(&self, upid: &Upid) -> Result<()> {
        self.call(
            Method::DELETE,
            &["nodes", &upid.node, "tasks", upid.as_str()],
            vec![],
            Safety::Idempotent,
        )
        .await
    }

    /// The last `lines` lines of a task log (empty if the log cannot be read).
    pub async fn task_log_tail(&self, upid: &Upid, lines: usize) -> Vec<String> {
        match self.task_log(upid, 0, 100_000).await {
            Ok(log) => {
                let skip = log.len().saturating_sub(lines);
                log.into_iter().skip(skip).map(|l| l.t).collect()
            }
            Err(_) => Vec::new(),
        }
    }

    /// Polls a task until it stops, with backoff, a timeout and progress events. A failed task becomes
    /// [`Error::TaskFailed`] with the log tail; a status call that briefly answers "no such task" right after
    /// the UPID was issued is tolerated.
    pub async fn wait_task(&self, upid: &Upid, opts: &WaitOptions) -> Result<TaskOutcome> {
        let started = Instant::now();
        let mut interval = opts.initial_interval;
        loop {
            match self.task_status(upid).await {
                Ok(status) if status.is_stopped() => {
                    let exitstatus = status
                        .exitstatus
                        .clone()
                        .unwrap_or_else(|| "unexpected status".into());
                    self.events().emit(&ClientEvent::TaskFinished {
                        upid: upid.to_string(),
                        kind: upid.kind.clone(),
                        exitstatus: exitstatus.clone(),
                        elapsed: started.elapsed(),
                    });
                    if status.succeeded() {
                        let warnings = if exitstatus.starts_with("WARNINGS") {
                            self.task_log_tail(upid, 1000)
                                .await
                                .into_iter()
                                .filter(|l| l.contains("WARN"))
                                .collect()
                        } else {
                            Vec::new()
                        };
                        return Ok(TaskOutcome {
                            exitstatus,
                            warnings,
                        });
                    }
                    let log = self.task_log_tail(upid, opts.log_lines).await;
                    return Err(Error::TaskFailed {
                        upid: upid.to_string(),
                        exitstatus,
                        log,
                    });
                }
                Ok(_) => {}
                Err(e)
                    if e.kind() == ErrorKind::NotFound
                        && started.elapsed() < Duration::from_secs(10) => {}
                Err(e) => return Err(e),
            }
            if started.elapsed() >= opts.timeout {
                return Err(Error::TaskTimeout {
                    upid: upid.to_string(),
                    timeout: opts.timeout,
                });
            }
            self.events().emit(&ClientEvent::TaskProgress {
                upid: upid.to_string(),
                kind: upid.kind.clone(),
                elapsed: started.elapsed(),
                timeout: opts.timeout,
            });
            let remaining = opts.timeout.saturating_sub(started.elapsed());
            tokio::time::sleep(interval.min(remaining.max(Duration::from_millis(1)))).await;
            interval = opts.next_interval(interval);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upids_from_real_issues_parse() {
        let u = Upid::parse("UPID:prox-srv2:003EB904:2E8895E0:65C0FA88:qmstart:129:root@pam:")
            .expect("valid");
        assert_eq!(
            (
                u.node.as_str(),
                u.kind.as_str(),
                u.id.as_str(),
                u.user.as_str()
            ),
            ("prox-srv2", "qmstart", "129", "root@pam")
        );
        let u = Upid::parse("UPID:node01:00003558:071F1869:6857C4E4:imgcopy::caprox1@pve!capi:")
            .expect("valid");
        assert_eq!(u.id, "");
        assert_eq!(u.user, "caprox1@pve!capi");
        // 9-digit pstart (uptime > 497 days)
        assert!(Upid::parse("UPID:pve:0001E240:105E30A78:69559A00:qmcreate:9001:a@pve!t:").is_ok());
    }

    #[test]
    fn malformed_upids_are_rejected() {
        for bad in [
            "",
            "UPID:pve:1:2:3:qmstart:1:root@pam:",
            "UPID:pve:0001E240:05E30A78:69559A00:qmcreate:9001:root@pam",
            "XPID:pve:0001E240:05E30A78:69559A00:qmcreate:9001:root@pam:",
            "UPID:-pve:0001E240:05E30A78:69559A00:qmcreate:9001:root@pam:",
        ] {
            assert!(Upid::parse(bad).is_err(), "{bad}");
        }
    }
}
