//! Server-side printing: the `meta.k8s.io/v1` `Table` kubectl asks for, with the columns
//! `kubectl get` shows for nodes and a NAME/AGE table for everything else.

use serde_json::{Value, json};

use super::store::{now_secs, parse_rfc3339};

/// kubectl's human duration (`45s`, `3m20s`, `5h`, `12d`).
pub fn human_age(secs: i64) -> String {
    let s = secs.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86_400);
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        if s % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", s % 60)
        }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 192 {
        if h % 24 == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{}h", h % 24)
        }
    } else if d < 730 {
        format!("{d}d")
    } else {
        format!("{}y", d / 365)
    }
}

fn age(obj: &Value) -> String {
    obj["metadata"]["creationTimestamp"]
        .as_str()
        .and_then(parse_rfc3339)
        .map_or_else(|| "<unknown>".into(), |t| human_age(now_secs() - t))
}

fn column(name: &str, format: &str) -> Value {
    json!({"name": name, "type": "string", "format": format, "description": "", "priority": 0})
}

fn node_row(node: &Value) -> Vec<Value> {
    let ready = node["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
        .is_some_and(|c| c["status"] == "True");
    let mut status = if ready {
        "Ready".to_owned()
    } else {
        "NotReady".to_owned()
    };
    if node["spec"]["unschedulable"] == true {
        status.push_str(",SchedulingDisabled");
    }
    let mut roles: Vec<&str> = node["metadata"]["labels"]
        .as_object()
        .map(|l| {
            l.keys()
                .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
                .collect()
        })
        .unwrap_or_default();
    roles.sort_unstable();
    let roles = if roles.is_empty() {
        "<none>".to_owned()
    } else {
        roles.join(",")
    };
    let version = node["status"]["nodeInfo"]["kubeletVersion"]
        .as_str()
        .unwrap_or_default();
    vec![
        json!(node["metadata"]["name"]),
        json!(status),
        json!(roles),
        json!(age(node)),
        json!(version),
    ]
}

/// Renders a list response as a Table.
pub fn table(kind: &str, list: &Value) -> Value {
    let items = list["items"].as_array().cloned().unwrap_or_default();
    let (columns, rows): (Vec<Value>, Vec<Vec<Value>>) = match kind {
        "Node" => (
            vec![
                column("Name", "name"),
                column("Status", ""),
                column("Roles", ""),
                column("Age", ""),
                column("Version", ""),
            ],
            items.iter().map(node_row).collect(),
        ),
        "Namespace" => (
            vec![
                column("Name", "name"),
                column("Status", ""),
                column("Age", ""),
            ],
            items
                .iter()
                .map(|o| {
                    vec![
                        json!(o["metadata"]["name"]),
                        json!(o["status"]["phase"]),
                        json!(age(o)),
                    ]
                })
                .collect(),
        ),
        "Secret" => (
            vec![
                column("Name", "name"),
                column("Type", ""),
                column("Data", ""),
                column("Age", ""),
            ],
            items
                .iter()
                .map(|o| {
                    let n = o["data"].as_object().map_or(0, serde_json::Map::len);
                    vec![
                        json!(o["metadata"]["name"]),
                        json!(o["type"]),
                        json!(n),
                        json!(age(o)),
                    ]
                })
                .collect(),
        ),
        _ => (
            vec![column("Name", "name"), column("Age", "")],
            items
                .iter()
                .map(|o| vec![json!(o["metadata"]["name"]), json!(age(o))])
                .collect(),
        ),
    };
    let rows: Vec<Value> = rows
        .into_iter()
        .zip(items.iter())
        .map(|(cells, obj)| {
            json!({
                "cells": cells,
                "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]},
            })
        })
        .collect();
    json!({
        "kind": "Table", "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": list["metadata"]["resourceVersion"]},
        "columnDefinitions": columns, "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_kubectl() {
        assert_eq!(human_age(5), "5s");
        assert_eq!(human_age(200), "3m20s");
        assert_eq!(human_age(3 * 3600), "3h");
        assert_eq!(human_age(20 * 86_400), "20d");
    }

    #[test]
    fn node_table_shows_ready_and_roles() {
        let list = json!({"metadata": {"resourceVersion": "3"}, "items": [{
            "metadata": {"name": "cp1", "labels": {"node-role.kubernetes.io/control-plane": ""}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}], "nodeInfo": {"kubeletVersion": "v1.35.0"}},
        }]});
        let t = table("Node", &list);
        assert_eq!(t["rows"][0]["cells"][1], "Ready");
        assert_eq!(t["rows"][0]["cells"][2], "control-plane");
    }
}
