//! The task endpoints: status, log (with `start`/`limit`/`total`), stopping a task, and the task list.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::api::{ApiError, ApiResult, Reply};
use super::state::{Task, World};

fn find<'a>(w: &'a World, params: &BTreeMap<String, String>) -> Result<&'a Task, ApiError> {
    let upid = params.get("upid").map(String::as_str).unwrap_or("");
    let parts: Vec<&str> = upid.split(':').collect();
    if !upid.starts_with("UPID:") || parts.len() != 9 {
        return Err(ApiError::param("upid", "unable to parse worker upid"));
    }
    w.tasks
        .get(upid)
        .ok_or_else(|| ApiError::param("upid", "no such task"))
}

fn status_json(t: &Task, node: &str) -> Value {
    let (user, token) = match t.user.split_once('!') {
        Some((u, tok)) => (u.to_string(), Some(tok.to_string())),
        None => (t.user.clone(), None),
    };
    let mut v = json!({
        "upid": t.upid, "node": node, "pid": t.pid, "pstart": t.pstart, "starttime": t.starttime,
        "type": t.kind, "id": t.id, "user": user,
        "status": if t.exitstatus.is_some() { "stopped" } else { "running" },
    });
    if let Some(tok) = token {
        v["tokenid"] = json!(tok);
    }
    if let Some(e) = &t.exitstatus {
        v["exitstatus"] = json!(e);
    }
    v
}

pub(crate) fn status(w: &World, params: &BTreeMap<String, String>) -> ApiResult {
    let t = find(w, params)?;
    Ok(Reply::data(status_json(t, &w.node)))
}

pub(crate) fn log(w: &World, params: &BTreeMap<String, String>) -> ApiResult {
    let t = find(w, params)?;
    let start: usize = params
        .get("start")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let limit: usize = params
        .get("limit")
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let lines: Vec<Value> = t
        .log
        .iter()
        .enumerate()
        .skip(start)
        .take(limit)
        .map(|(i, l)| json!({"n": i + 1, "t": l}))
        .collect();
    Ok(Reply {
        data: Value::Array(lines),
        total: Some(t.log.len() as u64),
    })
}

pub(crate) fn stop(w: &mut World, params: &BTreeMap<String, String>) -> ApiResult {
    let upid = find(w, params)?.upid.clone();
    w.finish_task(&upid, Err("interrupted by signal".into()));
    Ok(Reply::data(Value::Null))
}

/// `GET /nodes/{node}/tasks`: `source=archive` (the default) lists finished tasks, `active` running ones,
/// `all` both (pve-manager `API2/Tasks.pm`), newest first.
pub(crate) fn list(w: &World, params: &BTreeMap<String, String>) -> Reply {
    let vmid = params.get("vmid");
    let kind = params.get("typefilter");
    let source = params.get("source").map_or("archive", String::as_str);
    let mut tasks: Vec<&Task> = w
        .tasks
        .values()
        .filter(|t| match source {
            "active" => t.exitstatus.is_none(),
            "all" => true,
            _ => t.exitstatus.is_some(),
        })
        .collect();
    tasks.sort_by_key(|t| std::cmp::Reverse((t.starttime, t.pid)));
    let items: Vec<Value> = tasks
        .into_iter()
        .filter(|t| vmid.is_none_or(|v| &t.id == v))
        .filter(|t| kind.is_none_or(|k| &t.kind == k))
        .map(|t| {
            let mut v = status_json(t, &w.node);
            if let Some(e) = &t.exitstatus {
                v["status"] = json!(e);
            }
            v
        })
        .collect();
    Reply::data(Value::Array(items))
}
