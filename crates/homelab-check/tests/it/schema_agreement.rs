//! Schema verdicts agree with kubernetes-validate (`-k 1.35.0 --strict`) on valid and invalid objects.

use std::process::Command;

use homelab_check::{Validator, Verdict};
use homelab_kustomize::yaml::parse_value;

const CASES: &[&str] = &[
    // valid
    "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: ok}\nspec:\n  selector: {matchLabels: {a: b}}\n  template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: i, resources: {limits: {cpu: 500m, memory: 1Gi}}}]}}\n",
    "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80, targetPort: http}], selector: {a: b}}\n",
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n",
    "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ntype: Opaque\ndata: {a: YWJj}\n",
    "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: i}\nspec: {rules: [{host: a.b, http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: s, port: {number: 80}}}}]}}]}\n",
    "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: j}\nspec: {schedule: '@daily', jobTemplate: {spec: {template: {spec: {restartPolicy: Never, containers: [{name: c, image: i}]}}}}}\n",
    "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: p}\nspec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n",
    "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: b}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}\nsubjects: [{kind: ServiceAccount, name: d, namespace: x}]\n",
    // invalid
    "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: bad}\nspec:\n  replicas: three\n  selector: {matchLabels: {a: b}}\n  template: {spec: {containers: [{name: c, image: i}]}}\n",
    "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: extra}\nspec:\n  bogus: 1\n  selector: {matchLabels: {a: b}}\n  template: {spec: {containers: [{name: c, image: i}]}}\n",
    "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: http}]}\n",
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: 1}\n",
    "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{image: i}]}\n",
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, labels: {a: [1]}}\n",
    "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: j}\nspec: {jobTemplate: {spec: {template: {spec: {containers: [{name: c, image: i}]}}}}}\n",
];

#[test]
fn verdicts_match_kubernetes_validate() {
    let validator = Validator::new(crate::schema_options());
    let dir = tempfile::tempdir().expect("tempdir");
    let mut disagreements = Vec::new();
    for (i, case) in CASES.iter().enumerate() {
        let file = dir.path().join(format!("case{i}.yaml"));
        std::fs::write(&file, case).expect("write");
        let out = Command::new("kubernetes-validate")
            .args(["-k", "1.35.0", "--strict"])
            .arg(&file)
            .output()
            .expect("kubernetes-validate must be installed (.ci/install-peers)");
        let theirs_valid = out.status.success();
        let obj = parse_value(case).expect("case parses").to_json();
        let ours = validator.validate(&obj);
        let ours_valid = matches!(ours, Verdict::Valid);
        if theirs_valid != ours_valid {
            disagreements.push(format!(
                "case {i}: kubernetes-validate valid={theirs_valid}, ours={ours:?}\n{case}"
            ));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

#[test]
fn sops_encrypted_secrets_are_recognised_not_reported() {
    let validator = Validator::new(crate::schema_options());
    let obj = parse_value("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {a: 'ENC[x]'}\nsops: {mac: 'ENC[y]'}\n")
        .expect("parses")
        .to_json();
    assert!(matches!(validator.validate(&obj), Verdict::Skipped(_)));
}

#[test]
fn crd_instances_validate_against_the_flux_schemas_and_unknown_kinds_are_missing() {
    let validator = Validator::new(crate::schema_options());
    let ok = parse_value("apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: a}\nspec: {interval: 10m, prune: true, sourceRef: {kind: GitRepository, name: flux-system}}\n")
        .expect("parses")
        .to_json();
    assert_eq!(validator.validate(&ok), Verdict::Valid);
    let bad = parse_value("apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: a}\nspec: {interval: 10m, prune: yes-please, sourceRef: {kind: GitRepository, name: flux-system}}\n")
        .expect("parses")
        .to_json();
    assert!(matches!(validator.validate(&bad), Verdict::Invalid(_)));
    let unknown =
        parse_value("apiVersion: widgets.example.org/v1\nkind: Widget\nmetadata: {name: a}\n")
            .expect("parses")
            .to_json();
    assert_eq!(validator.validate(&unknown), Verdict::Missing);
}

#[test]
fn common_homelab_crds_are_built_in() {
    let validator = Validator::new(crate::schema_options());
    let ok = parse_value("apiVersion: cert-manager.io/v1\nkind: ClusterIssuer\nmetadata: {name: a}\nspec: {selfSigned: {}}\n")
        .expect("parses")
        .to_json();
    assert_eq!(validator.validate(&ok), Verdict::Valid);
    let bad = parse_value("apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: a}\nspec: {selector: {}, endpointz: []}\n")
        .expect("parses")
        .to_json();
    assert!(
        matches!(&validator.validate(&bad), Verdict::Invalid(e) if e.iter().any(|m| m.contains("endpointz"))),
        "{:?}",
        validator.validate(&bad)
    );
}

const WIDGET_CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.org}
spec:
  group: example.org
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
              note: {type: string, nullable: true}
              extra: {type: object, x-kubernetes-preserve-unknown-fields: true, properties: {a: {type: string}}}
";

#[test]
fn a_crd_of_the_tree_defines_a_strict_schema_for_its_kind() {
    let validator = Validator::new(crate::schema_options());
    let crd = parse_value(WIDGET_CRD).expect("parses").to_json();
    assert_eq!(validator.add_crd(&crd), Ok(1));
    let obj = |spec: &str| {
        parse_value(&format!(
            "apiVersion: example.org/v1\nkind: Widget\nmetadata: {{name: w}}\nspec: {spec}\n"
        ))
        .expect("parses")
        .to_json()
    };
    assert_eq!(
        validator.validate(&obj("{size: 3, note: null, extra: {b: 1}}")),
        Verdict::Valid
    );
    assert!(matches!(
        validator.validate(&obj("{size: three}")),
        Verdict::Invalid(_)
    ));
    let unknown = validator.validate(&obj("{size: 3, colour: red}"));
    assert!(
        matches!(&unknown, Verdict::Invalid(e) if e.iter().any(|m| m.contains("colour"))),
        "{unknown:?}"
    );
}
