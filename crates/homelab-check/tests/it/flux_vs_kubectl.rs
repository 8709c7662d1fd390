//! The Flux emulation equals what kustomize-controller does: its generated/extended kustomization, written
//! to disk and built by `kubectl kustomize --load-restrictor LoadRestrictionsNone`, gives the same bytes.

use std::process::Command;

use homelab_check::{Repo, flux};

#[test]
fn flux_builds_without_post_build_match_kubectl_on_the_written_kustomization() {
    let t = crate::copy_fixture();
    let root = t.path();
    // Drop postBuild so the comparison is pure kustomize.
    let apps = root.join("kubernetes/flux-system/apps.yaml");
    let text = std::fs::read_to_string(&apps).expect("read");
    let cut = text.find("  postBuild:").expect("fixture has postBuild");
    let rest = text[cut..]
        .find("---")
        .map(|i| &text[cut + i..])
        .unwrap_or("");
    std::fs::write(&apps, format!("{}{}", &text[..cut], rest)).expect("write");
    let repo = Repo::open(root).expect("repo");
    let fks = flux::discover(&repo);
    assert_eq!(fks.len(), 3);
    for fk in &fks {
        let ours = flux::build(&repo, fk)
            .expect("flux build")
            .output
            .to_yaml()
            .expect("yaml");
        let k = flux::kustomization_for(&repo, fk).expect("kustomization");
        // Write what kustomize-controller would write.
        let mut y =
            String::from("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n");
        y.push_str(&format!("resources: {:?}\n", k.resources));
        if !k.components.is_empty() {
            y.push_str(&format!("components: {:?}\n", k.components));
        }
        if let Some(ns) = &k.namespace {
            y.push_str(&format!("namespace: {ns}\n"));
        }
        if !k.images.is_empty() {
            y.push_str("images:\n");
            for i in &k.images {
                y.push_str(&format!("- name: {}\n", i.name));
                if let Some(tag) = &i.new_tag {
                    y.push_str(&format!("  newTag: {tag:?}\n"));
                }
            }
        }
        if !k.patches.is_empty() || !k.config_map_generator.is_empty() {
            // The fixture's patched/generated directory: splice the original file with the Flux additions.
            let orig = std::fs::read_to_string(k.dir.join("kustomization.yaml")).expect("orig");
            y = orig.clone();
            y.push_str(&format!(
                "namespace: {}\n",
                k.namespace.clone().unwrap_or_default()
            ));
            y.push_str(&format!(
                "components: {:?}\nimages:\n- name: nginx\n  newTag: \"1.27\"\n",
                k.components
            ));
            y.push_str("patches:\n");
            for p in &k.patches {
                y.push_str("- target: {kind: Deployment, name: web}\n  patch: |-\n");
                for l in p.patch.as_deref().unwrap_or("").lines() {
                    y.push_str(&format!("    {l}\n"));
                }
            }
        }
        std::fs::write(k.dir.join("kustomization.yaml"), y).expect("write kustomization");
        let out = Command::new("kubectl")
            .args(["kustomize", "--load-restrictor", "LoadRestrictionsNone"])
            .arg(&k.dir)
            .output()
            .expect("kubectl");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            ours,
            String::from_utf8_lossy(&out.stdout),
            "Flux Kustomization {}",
            fk.name
        );
    }
}
