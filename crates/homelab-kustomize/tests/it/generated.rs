//! Generated differential cases: random kustomizations (seeded, reproducible) combining every supported
//! field with YAML-hostile strings, each built by us and by `kubectl kustomize`, compared byte for byte.

use std::process::Command;

use serde_json::{Value, json};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, pct: u64) -> bool {
        self.next() % 100 < pct
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const TRICKY: &[&str] = &[
    "yes",
    "on",
    "Off",
    "y",
    "N",
    "1.0",
    "012",
    "0x1F",
    "1e3",
    "1_000",
    "12:30",
    "2024-01-02",
    "~",
    "null",
    "",
    "true",
    "a: b",
    "- x",
    "#c",
    "a #b",
    "*x",
    "&x",
    "!x",
    "%x",
    "@x",
    "`x",
    "|x",
    ">x",
    "?x",
    "? x",
    "[x]",
    "{x}",
    "x,y",
    "'quoted'",
    "\"dq\"",
    "it's",
    "multi\nline\n",
    "multi\nline",
    "\nlead",
    "trail\n\n",
    "tab\there",
    "trailing ",
    " leading",
    "ünïcödé ✓",
    "emoji 😀",
    "back\\slash",
    "ctrl\u{1}x",
    "---",
    "...x",
    "<<",
    "long words that go on and on and on beyond the eighty column limit of the go yaml emitter for sure yes",
    "averyveryveryveryveryveryveryveryveryveryveryveryveryveryveryveryveryveryveryverylongtoken",
    "long: with colon that goes on and on and on beyond the eighty column limit of the emitter",
    "long\twith tab that goes on and on and on beyond the eighty column limit of the go yaml emitter",
    "${VAR}",
    "${VAR:=1}",
    "$notbraced",
    "http://x.y/z?a=b&c=<d>",
];

fn deployment(name: &str, rng: &mut Rng) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}, "annotations": {"note": rng.pick(TRICKY)}},
        "spec": {
            "replicas": rng.below(4),
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {"name": "main", "image": rng.pick(&["nginx", "nginx:1.25", "ghcr.io/org/app:v1@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "registry.local:5000/tool"]),
                         "args": [rng.pick(TRICKY), rng.pick(TRICKY)],
                         "env": [{"name": "A", "value": rng.pick(TRICKY)}, {"name": "CM", "valueFrom": {"configMapKeyRef": {"name": "gen-cm", "key": "k0"}}}],
                         "envFrom": [{"configMapRef": {"name": "gen-cm"}}, {"secretRef": {"name": "gen-secret"}}]}
                    ],
                    "volumes": [{"name": "v", "configMap": {"name": "gen-cm"}}]
                }
            }
        }
    })
}

fn objects(rng: &mut Rng, i: usize) -> Vec<Value> {
    let mut out = vec![deployment(&format!("web{i}"), rng)];
    if rng.chance(70) {
        out.push(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": format!("svc{i}")},
            "spec": {"selector": {"app": format!("web{i}")}, "ports": [{"port": 80, "targetPort": rng.pick(&[json!(8080), json!("http")])}]}}));
    }
    if rng.chance(70) {
        let mut data = serde_json::Map::new();
        for k in 0..4 {
            data.insert(format!("key{k}"), json!(rng.pick(TRICKY)));
        }
        out.push(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("plain{i}")}, "data": data}));
    }
    if rng.chance(40) {
        out.push(json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": format!("job{i}")},
            "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "j", "image": "nginx"}]}}}}}}));
    }
    if rng.chance(40) {
        out.push(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": format!("w{i}")},
            "spec": {"values": {"list": [1, 2.5, true, null, rng.pick(TRICKY)], "nested": {"z": 1, "a": [], "m": {}}}}}));
    }
    if rng.chance(30) {
        out.push(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": format!("ns{i}")}}));
    }
    out
}

fn kustomization(rng: &mut Rng, objs: &[Value]) -> Value {
    let mut k = serde_json::Map::new();
    k.insert("resources".into(), json!(["res.json"]));
    if rng.chance(50) {
        k.insert(
            "namespace".into(),
            json!(rng.pick(&["prod", "media", "flux-system"])),
        );
    }
    if rng.chance(40) {
        k.insert("namePrefix".into(), json!("p-"));
    }
    if rng.chance(30) {
        k.insert("nameSuffix".into(), json!("-s"));
    }
    if rng.chance(30) {
        k.insert("commonLabels".into(), json!({"team": "home"}));
    }
    if rng.chance(40) {
        k.insert("labels".into(), json!([{"pairs": {"tier": "web"}, "includeSelectors": rng.chance(50), "includeTemplates": rng.chance(50)}]));
    }
    if rng.chance(40) {
        k.insert(
            "commonAnnotations".into(),
            json!({"owner": rng.pick(TRICKY)}),
        );
    }
    if rng.chance(40) {
        k.insert("images".into(), json!([{"name": "nginx", "newTag": "1.27"}, {"name": "ghcr.io/org/app", "newName": "quay.io/org/app", "digest": "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}]));
    }
    let dep = objs[0]["metadata"]["name"]
        .as_str()
        .unwrap_or("web")
        .to_string();
    if rng.chance(40) {
        k.insert(
            "replicas".into(),
            json!([{"name": dep, "count": rng.below(9)}]),
        );
    }
    let mut literals = vec![format!("k0={}", "v0")];
    for n in 1..3 {
        let v = rng.pick(TRICKY).replace('\n', " ");
        literals.push(format!("k{n}={v}"));
    }
    k.insert(
        "configMapGenerator".into(),
        json!([{"name": "gen-cm", "literals": literals}]),
    );
    k.insert("secretGenerator".into(), json!([{"name": "gen-secret", "literals": [format!("password={}", rng.pick(TRICKY).replace('\n', " "))]}]));
    if rng.chance(40) {
        k.insert("generatorOptions".into(), json!({"disableNameSuffixHash": rng.chance(50), "labels": {"gen": "yes"}, "annotations": {"g": "1"}}));
    }
    let mut patches = vec![
        json!({"target": {"kind": "Deployment"}, "patch": serde_json::to_string(&json!([{"op": "add", "path": "/metadata/annotations/patched", "value": rng.pick(TRICKY)}])).unwrap_or_default()}),
    ];
    if rng.chance(50) {
        patches.push(json!({"patch": serde_json::to_string(&json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": dep},
            "spec": {"template": {"spec": {"containers": [{"name": "side", "image": "busybox"}, {"name": "main", "env": [{"name": "B", "value": rng.pick(TRICKY)}]}]}}}})).unwrap_or_default()}));
    }
    k.insert("patches".into(), json!(patches));
    if rng.chance(40) {
        k.insert("replacements".into(), json!([{"source": {"kind": "ConfigMap", "name": "gen-cm", "fieldPath": "data.k0"},
            "targets": [{"select": {"kind": "Deployment"}, "fieldPaths": ["spec.template.metadata.annotations.from-cm"], "options": {"create": true}}]}]));
    }
    if rng.chance(25) {
        k.insert("sortOptions".into(), json!({"order": "fifo"}));
    }
    Value::Object(k)
}

#[test]
fn random_kustomizations_build_byte_identical_to_kubectl_kustomize() {
    let cases: u64 = std::env::var("KUSTOMIZE_GENERATED_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let mut failures = Vec::new();
    for seed in 1..=cases {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let t = tempfile::tempdir().expect("tempdir");
        let objs = objects(&mut rng, seed as usize);
        let stream: Vec<String> = objs
            .iter()
            .map(|o| serde_json::to_string_pretty(o).unwrap_or_default())
            .collect();
        std::fs::write(t.path().join("res.json"), stream.join("\n---\n")).expect("write");
        let k = kustomization(&mut rng, &objs);
        std::fs::write(
            t.path().join("kustomization.yaml"),
            serde_json::to_string_pretty(&k).unwrap_or_default(),
        )
        .expect("write");
        let theirs = Command::new("kubectl")
            .arg("kustomize")
            .arg(t.path())
            .output()
            .expect("kubectl");
        let ours =
            homelab_kustomize::build_dir(t.path(), &Default::default()).and_then(|o| o.to_yaml());
        match (theirs.status.success(), ours) {
            (true, Ok(o)) if o == String::from_utf8_lossy(&theirs.stdout) => {}
            (false, Err(_)) => {}
            (ok, o) => {
                let kept = t.keep();
                failures.push(format!(
                    "seed {seed} ({}): kubectl ok={ok}, ours={:?}",
                    kept.display(),
                    o.map(|_| "built").map_err(|e| e.to_string())
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
